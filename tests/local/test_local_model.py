"""The local provider end to end on the real engine and the shipped SmolLM2 (structure, never wording)."""

from __future__ import annotations

import json
import math
import os
import signal
from typing import Any

import httpx
import jsonschema
import pytest

from tests.gateway.server import GatewayServer

pytestmark = [pytest.mark.local_model, pytest.mark.xdist_group("local_model"), pytest.mark.timeout(600)]

HI = [{"role": "user", "content": "Say hello."}]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
TIMEOUT = httpx.Timeout(300.0)


def post(gw: GatewayServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=TIMEOUT)


def sse_data(gw: GatewayServer, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    with httpx.stream("POST", gw.url + path, json={**body, "stream": True}, timeout=TIMEOUT) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                events.append(json.loads(line[5:]))
    return events


def test_keyless_gateway_lists_the_local_model(local_gateway: GatewayServer) -> None:
    models = httpx.get(local_gateway.url + "/v1/models").json()
    assert "local" in [m["id"] for m in models["data"]]
    health = httpx.get(local_gateway.url + "/health").json()
    assert health["providers"]["local"]["configured"] is True
    caps = httpx.get(local_gateway.url + "/capabilities").json()["models"]["local"]
    assert caps["tools"] and caps["json_schema"] and not caps["vision"]


def test_openai_chat_without_a_model_is_answered_locally(local_gateway: GatewayServer) -> None:
    resp = post(local_gateway, "/v1/chat/completions", {"messages": HI, "max_tokens": 8})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["prompt_tokens"] > 0 and 0 < body["usage"]["completion_tokens"] <= 8
    assert "/" not in body["model"]  # the model's name, never the file's path on this machine


def test_openai_stream(local_gateway: GatewayServer) -> None:
    chunks = sse_data(local_gateway, "/v1/chat/completions",
                      {"model": "local", "messages": HI, "max_tokens": 8, "stream_options": {"include_usage": True}})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert text.strip() and usage and usage[-1]["completion_tokens"] > 0


def test_anthropic_messages_and_stream(local_gateway: GatewayServer) -> None:
    body = {"model": "local", "max_tokens": 8, "messages": HI}
    resp = post(local_gateway, "/v1/messages", body)
    assert resp.status_code == 200, resp.text
    msg = resp.json()
    assert msg["content"][0]["text"].strip()
    assert msg["usage"]["output_tokens"] > 0
    events = sse_data(local_gateway, "/v1/messages", body)
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    usage = [e["usage"] for e in events if e["type"] == "message_delta"]
    assert text.strip() and usage[-1]["output_tokens"] > 0


def test_native_chat_and_stream(local_gateway: GatewayServer) -> None:
    body = {"model": "local/smollm2", "max_tokens": 8, "messages": HI}
    resp = post(local_gateway, "/chat", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["message"]["content"][0]["text"].strip()
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0
    assert answer["cost_usd"] == 0
    events = sse_data(local_gateway, "/chat", body)
    assert "".join(e.get("text", "") for e in events if e["type"] == "text_delta").strip()
    assert [e for e in events if e["type"] == "usage"][-1]["usage"]["output_tokens"] > 0


def test_responses_and_stream(local_gateway: GatewayServer) -> None:
    """The OpenAI Responses surface in front of the local engine: text, real usage, typed events."""
    body = {"model": "local", "input": "Say hello.", "max_output_tokens": 8, "store": False}
    resp = post(local_gateway, "/v1/responses", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    [message] = [item for item in answer["output"] if item["type"] == "message"]
    assert message["content"][0]["text"].strip()
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0
    events = sse_data(local_gateway, "/v1/responses", body)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta").strip()
    assert events[-1]["type"] in ("response.completed", "response.incomplete")  # incomplete: the 8-token cap
    assert events[-1]["response"]["usage"]["output_tokens"] > 0


def test_gemini_generate_and_stream(local_gateway: GatewayServer) -> None:
    """The Gemini surface in front of the local engine (``models/local:generateContent``)."""
    body = {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}],
            "generationConfig": {"maxOutputTokens": 8}}
    resp = post(local_gateway, "/v1beta/models/local:generateContent", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert "".join(p.get("text", "") for p in answer["candidates"][0]["content"]["parts"]).strip()
    assert answer["usageMetadata"]["promptTokenCount"] > 0 and answer["usageMetadata"]["candidatesTokenCount"] > 0
    chunks = []
    with httpx.stream("POST", local_gateway.url + "/v1beta/models/local:streamGenerateContent?alt=sse", json=body,
                      timeout=TIMEOUT) as stream:
        assert stream.status_code == 200, stream.read()
        chunks = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    text = "".join(p.get("text", "") for c in chunks for cand in c.get("candidates", [])
                   for p in cand.get("content", {}).get("parts", []))
    assert text.strip()
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0


def test_required_tool_call_validates_against_the_schema(local_gateway: GatewayServer) -> None:
    body = {
        "model": "local",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                    "parameters": WEATHER}}],
        "tool_choice": "required",
        "max_tokens": 60,
    }
    resp = post(local_gateway, "/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)
    # the same through a stream: canonical tool-call events, re-encoded as OpenAI deltas
    chunks = sse_data(local_gateway, "/v1/chat/completions", body)
    deltas = [tc for c in chunks if c.get("choices") for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas and deltas[0]["function"]["name"] == "get_weather"
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas)
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")][-1] == "tool_calls"


def test_json_schema_output_validates(local_gateway: GatewayServer) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    resp = post(local_gateway, "/v1/chat/completions", {
        "model": "local",
        "messages": [{"role": "user", "content": "Invent a person."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        "max_tokens": 60,
    })
    assert resp.status_code == 200, resp.text
    jsonschema.validate(json.loads(resp.json()["choices"][0]["message"]["content"]), schema)


def test_embeddings_rank_a_related_pair_above_an_unrelated_one(local_gateway: GatewayServer) -> None:
    texts = ["The cat sleeps on the sofa.", "A kitten is napping on the couch.", "Quarterly revenue rose 10%."]
    resp = post(local_gateway, "/v1/embeddings", {"model": "local", "input": texts})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    a, b, c = (row["embedding"] for row in sorted(body["data"], key=lambda r: r["index"]))

    def cos(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True)) / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))

    assert cos(a, b) > cos(a, c)
    assert body["usage"]["prompt_tokens"] > 0


def test_a_killed_engine_fails_the_call_in_flight_cleanly_and_is_restarted(local_gateway: GatewayServer) -> None:
    import threading
    import time

    from execution_platform.providers.local_supervisor import _SHARED

    assert post(local_gateway, "/chat", {"model": "local", "max_tokens": 4, "messages": HI}).status_code == 200
    [pid] = [sup.pid for sup in _SHARED.values() if sup.pid is not None]
    in_flight: list[httpx.Response] = []
    long_call = {"model": "local", "messages": HI, "max_tokens": 1500, "ignore_eos": True}
    worker = threading.Thread(target=lambda: in_flight.append(post(local_gateway, "/v1/chat/completions", long_call)))
    worker.start()
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    worker.join(300)
    while any(sup.pid == pid for sup in _SHARED.values()):  # until the supervisor has seen it die
        time.sleep(0.05)
    [failed] = in_flight
    assert failed.status_code in (502, 503), failed.text  # a clean upstream error, in OpenAI's shape
    assert set(failed.json()["error"]) >= {"message", "type", "code"}
    resp = post(local_gateway, "/chat", {"model": "local", "max_tokens": 4, "messages": HI})
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["output_tokens"] > 0
    assert [sup.pid for sup in _SHARED.values() if sup.pid is not None] != [pid]


async def test_agent_calls_a_python_function_and_answers_with_its_result(local_gateway: GatewayServer) -> None:
    from execution_platform.client import Client
    from execution_platform.tools import Agent, ToolRegistry
    from tests.local.conftest import keyless_settings

    registry = ToolRegistry()

    @registry.register
    def get_secret_number() -> int:
        """Return the secret number."""
        return 4217

    async with Client(keyless_settings()) as client:
        # temperature 0 and a seed: the small model then answers the same way every run (greedy decoding)
        result = await Agent(client, "local", registry, max_steps=4, max_tokens=60, temperature=0, seed=7).run(
            "What is the secret number? Use the tool, then tell me the number.")
    assert result.stop_reason == "final_answer"
    called = [c.name for m in result.messages for c in m.tool_calls]
    assert called == ["get_secret_number"]
    assert [m.text for m in result.messages if m.role == "tool"] == ["4217"]
    assert "4217" in result.text


async def test_persona_falls_back_from_a_keyless_cloud_target_to_local(local_gateway: GatewayServer) -> None:
    from pathlib import Path

    from execution_platform.client import Client
    from tests.local.conftest import keyless_settings

    config = Path(__file__).resolve().parents[2] / "examples" / "personas.yaml"
    async with Client(keyless_settings(), config=config) as client:
        answer = await client.chat(model="persona:helper_with_local_fallback", messages=HI, max_tokens=8)
    assert answer.provider == "local" and answer.message.text.strip()
    assert [(a.provider, a.status) for a in answer.attempts] == [("openai", "error"), ("local", "ok")]
