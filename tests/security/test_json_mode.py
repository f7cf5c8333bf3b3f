"""``response_format`` JSON on Claude is served by a forced tool call, streamed or not, never refused."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from tests.fakes.script import Reply, ToolCallSpec

from .params_support import UPSTREAMS, body_for, crossed, post, start

__all__ = ["start"]

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
          "required": ["city", "n"]}
FORMATS: dict[str, Any] = {
    "json_object": ({"type": "json_object"}, {"type": "object"}),
    "json_schema": ({"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}, SCHEMA),
}


@pytest.fixture(scope="module")
def gw(fake_servers: Any) -> Any:
    from tests.gateway.server import start_gateway

    server = start_gateway({name: fake_servers[name] for name in UPSTREAMS})
    yield server
    server.stop()


def _streamed_text(raw: str) -> str:
    parts = []
    for line in raw.splitlines():
        if line.startswith("data:") and line.strip() != "data: [DONE]":
            event = orjson.loads(line[5:])
            for choice in event.get("choices") or []:
                parts.append(choice["delta"].get("content") or "")
                assert not choice["delta"].get("tool_calls")
    return "".join(parts)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", list(FORMATS))
@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "claude-sonnet-4-5"])
def test_json_response_format_on_claude_is_served(gw: Any, fake_anthropic: Any, kind: str, stream: bool,
                                                  model: str) -> None:
    response_format, schema = FORMATS[kind]
    native = kind == "json_schema" and model == "claude-sonnet-4-5"  # structured outputs: the native path
    answer = {"city": "Oslo", "n": 3}
    fake_anthropic.enqueue(Reply(text=orjson.dumps(answer).decode()) if native else
                           Reply(text=None, tool_calls=[ToolCallSpec(name="json_response", arguments=answer)]))
    r = post(gw, "openai", body_for("openai", f"anthropic/{model}", response_format=response_format, stream=stream))
    assert r.status_code == 200, r.text
    text = _streamed_text(r.text) if stream else r.json()["choices"][0]["message"]["content"]
    jsonschema.validate(orjson.loads(text), schema)
    assert orjson.loads(text) == answer
    if not stream:
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        assert not r.json()["choices"][0]["message"].get("tool_calls")
    sent = crossed(fake_anthropic)
    if native:
        assert sent["output_config"]["format"] == {"type": "json_schema", "schema": SCHEMA}
    else:
        assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
        assert sent["tools"][-1]["input_schema"] == schema


def test_non_object_schema_is_wrapped_and_unwrapped(gw: Any, fake_anthropic: Any) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    fake_anthropic.enqueue(Reply(text=None, tool_calls=[ToolCallSpec(name="json_response",
                                                                     arguments={"value": [1, 2]})]))
    fmt = {"type": "json_schema", "json_schema": {"name": "nums", "schema": schema}}
    r = post(gw, "openai", body_for("openai", "anthropic/claude-3-5-haiku-latest", response_format=fmt))
    assert r.status_code == 200, r.text
    assert orjson.loads(r.json()["choices"][0]["message"]["content"]) == [1, 2]
    assert crossed(fake_anthropic)["tools"][-1]["input_schema"]["properties"]["value"] == schema
