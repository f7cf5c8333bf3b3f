"""Request values are validated at decode on every surface: a 400 in the client's shape naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from .params_support import UPSTREAMS, body_for, error_of, post, start

__all__ = ["start"]

BAD_CAPS = [-5, 0, "100", True, 1.5]
CAP_FIELDS = {"native": ["max_tokens"], "openai": ["max_tokens", "max_completion_tokens"], "anthropic": ["max_tokens"]}
BAD_VALUES: dict[str, list[tuple[str, Any]]] = {
    "native": [("temperature", -1e308), ("temperature", 2.5), ("temperature", "0.5"), ("top_p", 1.5),
               ("top_k", 0), ("frequency_penalty", 3), ("presence_penalty", -2.5), ("seed", "7")],
    "openai": [("temperature", -1e308), ("temperature", 3), ("temperature", True), ("top_p", -0.1),
               ("frequency_penalty", 2.5), ("presence_penalty", -3), ("seed", 1.5)],
    "anthropic": [("temperature", -1e308), ("temperature", "1"), ("top_p", 2), ("top_k", -1), ("top_k", "5")],
}


@pytest.fixture(scope="module")
def gw(fake_servers: Any) -> Any:
    from tests.gateway.server import start_gateway

    server = start_gateway({name: fake_servers[name] for name in UPSTREAMS})
    yield server
    server.stop()


def _refused(gw: Any, fakes: Any, surface: str, body: dict[str, Any], param: str) -> None:
    fakes["openai"].reset()
    r = post(gw, surface, body)
    assert r.status_code == 400, r.text
    error = error_of(surface, r)
    if surface == "anthropic":
        assert param in error["message"] and error["type"] == "invalid_request_error"
    else:
        assert error["param"] == param
    assert fakes["openai"].last_body is None


@pytest.mark.parametrize("value", BAD_CAPS, ids=repr)
@pytest.mark.parametrize(("surface", "field"), [(s, f) for s, fields in CAP_FIELDS.items() for f in fields])
def test_output_caps_must_be_positive_integers(gw: Any, fake_servers: Any, surface: str, field: str,
                                               value: Any) -> None:
    body = body_for(surface, "openai/gpt-4o-mini", **{field: value})
    _refused(gw, fake_servers, surface, body, field)


@pytest.mark.parametrize(("surface", "field", "value"),
                         [(s, f, v) for s, cases in BAD_VALUES.items() for f, v in cases], ids=repr)
def test_sampling_values_must_be_in_range(gw: Any, fake_servers: Any, surface: str, field: str, value: Any) -> None:
    _refused(gw, fake_servers, surface, body_for(surface, "openai/gpt-4o-mini", **{field: value}), field)


SCHEMAS = ["not a schema", {"type": "string"}, {"type": "array", "items": {}}, ["type", "object"]]


@pytest.mark.parametrize("schema", SCHEMAS, ids=repr)
@pytest.mark.parametrize("surface", ["native", "openai", "anthropic"])
def test_tool_parameters_must_be_an_object_schema(gw: Any, fake_servers: Any, surface: str, schema: Any) -> None:
    if surface == "openai":
        tools: Any = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
        param = "tools[0].function.parameters"
    elif surface == "anthropic":
        tools = [{"name": "f", "input_schema": schema}]
        param = "tools.0.input_schema"
    else:
        tools = [{"name": "f", "parameters": schema}]
        param = "tools.0.parameters"
    _refused(gw, fake_servers, surface, body_for(surface, "openai/gpt-4o-mini", tools=tools), param)


@pytest.mark.parametrize("surface", ["native", "openai", "anthropic"])
def test_valid_values_still_pass(gw: Any, fake_servers: Any, surface: str) -> None:
    fake_servers["openai"].reset()
    tools = {
        "openai": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "anthropic": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
        "native": [{"name": "f", "parameters": {"type": "object"}}],
    }[surface]
    body = body_for(surface, "openai/gpt-4o-mini", max_tokens=1, temperature=0, top_p=1, tools=tools)
    r = post(gw, surface, body)
    assert r.status_code == 200, r.text
    assert fake_servers["openai"].last_body["max_tokens"] == 1
