"""Smoke-level behaviour of the native routes, headers and error shapes, over real HTTP."""

from __future__ import annotations

import httpx

from tests.fakes import Reply

from .server import GatewayServer


def test_health_lists_configured_providers(gateway: GatewayServer) -> None:
    r = httpx.get(gateway.url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["providers"]["openai"]["configured"] is True
    assert r.headers["x-ep-request-id"]


def test_native_chat_json(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Reply(text="native hello"))
    r = httpx.post(gateway.url + "/chat", json={"model": "openai/gpt-4o-mini",
                                                "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"]["content"][0]["text"] == "native hello"
    assert r.headers["x-ep-provider"] == "openai"
    assert r.headers["x-ep-attempts"] == "1"
    assert r.headers["x-ep-model"]


def test_native_chat_stream(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text="streamed native", chunks=4))
    with httpx.stream("POST", gateway.url + "/chat", json={
        "model": "anthropic/claude-sonnet-4-5", "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-ep-provider"] == "anthropic"
        text = "".join(r.iter_text())
    assert "event: start" in text and "event: finish" in text
    assert text.index("event: usage") < text.index("event: finish")


def test_unknown_route_is_404_in_openai_shape(gateway: GatewayServer) -> None:
    r = httpx.get(gateway.url + "/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    assert r.headers["x-ep-request-id"]


def test_bad_json_is_400_in_the_surface_shape(gateway: GatewayServer) -> None:
    r = httpx.post(gateway.url + "/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"[1, 2]")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404(gateway: GatewayServer, fake_openai) -> None:
    r = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "nosuch/x",
                                                               "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "model" or "nosuch" in r.json()["error"]["message"]
    assert fake_openai.requests == []


def test_metrics_exposes_request_counters(gateway: GatewayServer) -> None:
    httpx.get(gateway.url + "/health")
    r = httpx.get(gateway.url + "/metrics")
    assert r.status_code == 200
    assert 'ep_gateway_requests_total{route="/health",status="200",surface="none"}' in r.text


def test_provider_without_key_is_503_naming_the_variable(make_gateway) -> None:
    """Not the client's fault and not a crash: the operator has to set a key (never a 500)."""
    gw = make_gateway({"anthropic_api_key": None})
    for path, body in [
        ("/v1/chat/completions", {"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}),
        ("/v1/messages", {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "x"}]}),
    ]:
        r = httpx.post(gw.url + path, json=body)
        assert r.status_code == 503, r.text
        assert "EP_ANTHROPIC_API_KEY" in r.text
        assert r.headers["x-should-retry"] == "false"
