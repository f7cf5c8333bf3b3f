"""Hard input limits: refused before decoding or any upstream call, in the surface's error shape."""

from __future__ import annotations

import httpx
import pytest

from execution_platform.gateway.limits import Limits

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def small(make_gateway):
    return make_gateway(limits=Limits(max_body_bytes=4000, max_messages=3, max_message_chars=200))


def test_body_over_limit_is_413(small, fake_openai, fake_anthropic) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(small.url + "/v1/chat/completions", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    r = httpx.post(small.url + "/v1/messages", json={**MESSAGES, "messages": big["messages"]})
    assert r.status_code == 413 and r.json()["type"] == "error"
    # chunked upload without content-length is cut off too
    r = httpx.post(small.url + "/chat", content=iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]))
    assert r.status_code == 413
    assert fake_openai.requests == [] and fake_anthropic.requests == []


def test_too_many_messages_and_oversized_message_are_400(small, fake_openai) -> None:
    many = {**CHAT, "messages": [{"role": "user", "content": "hi"}] * 4}
    r = httpx.post(small.url + "/v1/chat/completions", json=many)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    large = {**CHAT, "messages": [{"role": "user", "content": "y" * 300}]}
    r = httpx.post(small.url + "/v1/chat/completions", json=large)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages.0"
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": "openai/gpt-4o-mini"}, "messages"),
        ("/v1/chat/completions", {**CHAT, "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {**CHAT, "temperature": "hot"}, None),
        ("/v1/messages", {**MESSAGES, "messages": [{"role": "user", "content": 5}]}, None),
        ("/chat", {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": 1}]}, None),
        ("/chat", {"model": "openai/gpt-4o-mini", "messages": []}, "messages"),
    ],
)
def test_schema_errors_are_400_in_the_surface_shape(gateway, fake_openai, fake_anthropic, path, body, param) -> None:
    r = httpx.post(gateway.url + path, json=body)
    assert r.status_code == 400, r.text
    payload = r.json()
    if path == "/v1/messages":
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    else:
        assert payload["error"]["type"] == "invalid_request_error"
        if param:
            assert payload["error"]["param"] == param
    assert fake_openai.requests == [] and fake_anthropic.requests == []


def test_unsupported_parameter_names_it(gateway, fake_openai) -> None:
    """gpt-3.5-turbo has no structured outputs: refused with the wire parameter's name, not forwarded."""
    caps = gateway.gateway.client.provider("openai").capabilities("gpt-3.5-turbo")
    if caps.json_schema:
        pytest.skip("the OpenAI adapter reports json_schema for gpt-3.5-turbo")
    body = {**CHAT, "model": "openai/gpt-3.5-turbo",
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}
    r = httpx.post(gateway.url + "/v1/chat/completions", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "response_format"
    assert fake_openai.requests == []
