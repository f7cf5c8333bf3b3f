"""Persona routing through the gateway: every surface, key scopes, capabilities, attempts and the
error table (429 / 502 / 504 after retries and fallbacks) in each surface's own shape."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from execution_platform.config.file import parse_config
from tests.fakes.script import Fault, Reply

from .conftest import MASTER

CONFIG = """
routing:
  retry: {max_attempts: 1, backoff_base: 0.01, backoff_max: 0.02, max_retry_after: 1}
  breaker: {failure_threshold: 100}
  timeouts: {first_token: 0.5, total: 10}
capabilities:
  openai/gpt-3.5-turbo: {context_window: 9000}
personas:
  dev:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
    system_prompt: You are the developer.
  reviewer:
    targets: [gemini/gemini-2.5-flash]
    tools: [read_file]
  seer:
    targets: [openai/gpt-3.5-turbo, gemini/gemini-2.5-flash]
  blind:
    targets: [openai/gpt-3.5-turbo]
  patient:
    targets: [openai/gpt-4o-mini]
    timeouts: {first_token: 0.3}
"""

SURFACES = ["native", "openai", "anthropic"]
PATHS = {"native": "/chat", "openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture
def gw(make_gateway):
    return make_gateway(config=parse_config(CONFIG))


def body(surface: str, model: str, *, stream: bool = False, image: bool = False) -> dict[str, Any]:
    content: Any = "hello"
    if image and surface == "anthropic":
        content = [{"type": "text", "text": "what is this?"},
                   {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]
    elif image and surface == "native":
        content = [{"type": "text", "text": "what is this?"}, {"type": "image", "data": PNG, "media_type": "image/png"}]
    elif image:
        content = [{"type": "text", "text": "what is this?"},
                   {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    out: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if surface == "anthropic":
        out["max_tokens"] = 100
    if stream:
        out["stream"] = True
    return out


def post(gw, surface: str, model: str, *, stream: bool = False, image: bool = False,
         headers: dict[str, str] | None = None) -> tuple[httpx.Response, str]:
    """Call a surface; returns the response and the answer text (streamed or not)."""
    r = httpx.post(gw.url + PATHS[surface], json=body(surface, model, stream=stream, image=image),
                   headers=headers or {}, timeout=20)
    if r.status_code != 200:
        return r, ""
    if not stream:
        data = r.json()
        if surface == "native":
            return r, "".join(p["text"] for p in data["message"]["content"] if p["type"] == "text")
        if surface == "openai":
            return r, data["choices"][0]["message"]["content"]
        return r, "".join(b["text"] for b in data["content"] if b["type"] == "text")
    assert r.headers["content-type"].startswith("text/event-stream")
    return r, streamed_text(surface, r.text)


def streamed_text(surface: str, raw: str) -> str:
    text = []
    for line in raw.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        event = orjson.loads(line[5:])
        if surface == "native" and event.get("type") == "text_delta":
            text.append(event["text"])
        elif surface == "openai" and event.get("choices"):
            text.append(event["choices"][0]["delta"].get("content") or "")
        elif surface == "anthropic" and event.get("type") == "content_block_delta":
            text.append(event["delta"].get("text", ""))
    return "".join(text)


def error_of(surface: str, r: httpx.Response) -> dict[str, Any]:
    """The error object, after checking the surface's envelope."""
    payload = r.json()
    if surface == "anthropic":
        assert payload["type"] == "error", payload
        return payload["error"]
    assert set(payload) == {"error"}, payload
    return payload["error"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("via", ["model", "header"])
@pytest.mark.parametrize("surface", SURFACES)
def test_persona_routes_on_every_surface(gw, fake_openai, fake_gemini, surface, via, stream) -> None:
    fake_openai.enqueue(Reply(text="written by the developer persona"))
    if via == "model":
        r, text = post(gw, surface, "persona:dev", stream=stream)
    else:  # the header wins over whatever the client put in the model field
        r, text = post(gw, surface, "gemini/gemini-2.5-flash", stream=stream, headers={"x-ep-persona": "dev"})
    assert r.status_code == 200, r.text
    assert text == "written by the developer persona"
    assert (r.headers["x-ep-provider"], r.headers["x-ep-model"], r.headers["x-ep-attempts"]) == (
        "openai", "gpt-4o-mini", "1")
    assert fake_gemini.requests == []
    sent = fake_openai.requests[-1].body
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "You are the developer."}


@pytest.mark.parametrize("via", ["model", "header"])
@pytest.mark.parametrize("surface", SURFACES)
def test_unknown_persona_is_404_in_the_surface_shape(gw, fake_openai, surface, via) -> None:
    headers = {"x-ep-persona": "nobody"} if via == "header" else None
    r, _ = post(gw, surface, "persona:nobody" if via == "model" else "openai/gpt-4o-mini", headers=headers)
    assert r.status_code == 404
    err = error_of(surface, r)
    assert err["type"] == "not_found_error" and "nobody" in err["message"]
    if surface != "anthropic":
        assert err["code"] == "persona_not_found"
    assert fake_openai.requests == []


def test_virtual_key_limited_to_personas(make_gateway, fake_gemini, fake_openai) -> None:
    gw = make_gateway({"master_key": MASTER}, config=parse_config(CONFIG))
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "reviewers", "personas": ["reviewer"]})
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    fake_gemini.enqueue(Reply(text="looks good"), Reply(text="looks good"))
    for surface, auth in (("openai", {"authorization": f"Bearer {secret}"}), ("anthropic", {"x-api-key": secret})):
        ok, text = post(gw, surface, "persona:reviewer", headers=auth)
        assert ok.status_code == 200 and text == "looks good"
        for model, headers in (("persona:dev", {}), ("openai/gpt-4o-mini", {}),
                               ("persona:reviewer", {"x-ep-persona": "dev"})):
            denied, _ = post(gw, surface, model, headers={**auth, **headers})
            assert denied.status_code == 403, (surface, model)
            assert error_of(surface, denied)["type"] in ("permission_denied", "permission_error")
    assert fake_openai.requests == []


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_tool_outside_the_persona_allow_list_is_403(gw, fake_gemini, surface) -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    if surface == "openai":
        tools = [{"type": "function", "function": {"name": name, "parameters": schema}}
                 for name in ("read_file", "write_file")]
    else:
        tools = [{"name": name, "input_schema": schema} for name in ("read_file", "write_file")]
    payload = {**body(surface, "persona:reviewer"), "tools": tools}
    r = httpx.post(gw.url + PATHS[surface], json=payload)
    assert r.status_code == 403, r.text
    err = error_of(surface, r)
    assert "write_file" in err["message"]
    if surface == "openai":
        assert err["code"] == "tool_not_allowed"
    assert fake_gemini.requests == []
    fake_gemini.enqueue(Reply(text="reading"))
    allowed = httpx.post(gw.url + PATHS[surface], json={**payload, "tools": tools[:1]})
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_image_skips_the_target_without_vision(gw, fake_openai, fake_gemini, surface, stream) -> None:
    fake_gemini.enqueue(Reply(text="a single pixel"))
    r, text = post(gw, surface, "persona:seer", stream=stream, image=True)
    assert r.status_code == 200, r.text
    assert text == "a single pixel"
    assert r.headers["x-ep-provider"] == "gemini" and r.headers["x-ep-attempts"] == "1"
    assert fake_openai.requests == []
    if surface == "native" and not stream:
        trail = [(a["provider"], a["status"], a["error_type"]) for a in r.json()["attempts"]]
        assert trail == [("openai", "skipped", "capability_missing"), ("gemini", "ok", None)]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_no_target_with_vision_is_412(gw, fake_openai, surface, stream) -> None:
    r, _ = post(gw, surface, "persona:blind", stream=stream, image=True)
    assert r.status_code == 412, r.text
    err = error_of(surface, r)
    assert "vision" in err["message"] and "openai/gpt-3.5-turbo" in err["message"]
    if surface != "anthropic":
        assert err["type"] == "capability_missing"
    assert fake_openai.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_fallback_to_the_second_target_is_reported(gw, fake_openai, fake_anthropic, surface, stream) -> None:
    fake_openai.enqueue(Fault("status", status=503), Fault("status", status=503))
    fake_anthropic.enqueue(Reply(text="the second target answered"))
    r, text = post(gw, surface, "persona:dev", stream=stream)
    assert r.status_code == 200, r.text
    assert text == "the second target answered"
    assert (r.headers["x-ep-provider"], r.headers["x-ep-model"], r.headers["x-ep-attempts"]) == (
        "anthropic", "claude-sonnet-4-5", "2")
    assert len(fake_openai.requests) == 1 and len(fake_anthropic.requests) == 1
    if surface == "native" and not stream:
        attempts = r.json()["attempts"]
        assert [(a["provider"], a["model"], a["status"]) for a in attempts] == [
            ("openai", "gpt-4o-mini", "error"), ("anthropic", "claude-sonnet-4-5", "ok")]
        assert attempts[0]["error_type"] == "upstream_error"
        assert all(a["duration_ms"] > 0 for a in attempts)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_open_breaker_skip_is_not_an_attempt(make_gateway, fake_openai, fake_anthropic, stream) -> None:
    config = CONFIG.replace("breaker: {failure_threshold: 100}", "breaker: {failure_threshold: 1, cooldown: 60}")
    gw = make_gateway(config=parse_config(config))
    fake_openai.enqueue(Fault("status", status=503))
    fake_anthropic.enqueue(Reply(text="first"), Reply(text="second"))
    first, _ = post(gw, "native", "persona:dev", stream=stream)
    assert first.headers["x-ep-attempts"] == "2"
    second, text = post(gw, "native", "persona:dev", stream=stream)
    assert second.status_code == 200 and text == "second"
    assert second.headers["x-ep-attempts"] == "1" and second.headers["x-ep-provider"] == "anthropic"
    assert len(fake_openai.requests) == 1  # the open breaker skipped openai without a call
    if not stream:
        trail = [(a["provider"], a["status"], a["error_type"]) for a in second.json()["attempts"]]
        assert trail == [("openai", "skipped", "circuit_open"), ("anthropic", "ok", None)]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_upstream_still_rate_limiting_is_429_with_retry_after(gw, fake_openai, fake_anthropic, surface, stream) -> None:
    fake_openai.enqueue(Fault("status", status=429, retry_after=7))
    fake_anthropic.enqueue(Fault("status", status=429, retry_after=9))
    r, _ = post(gw, surface, "persona:dev", stream=stream)
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "9"
    assert r.headers["x-ep-attempts"] == "2"
    assert error_of(surface, r)["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_upstream_failure_is_502(gw, fake_openai, fake_anthropic, surface, stream) -> None:
    fake_openai.enqueue(Fault("status", status=500))
    fake_anthropic.enqueue(Fault("status", status=500))
    r, _ = post(gw, surface, "persona:dev", stream=stream)
    assert r.status_code == 502, r.text
    assert r.headers["x-ep-attempts"] == "2"
    err = error_of(surface, r)
    assert err["type"] == ("api_error" if surface == "anthropic" else "upstream_error")
    assert fake_openai.api_key not in r.text and fake_anthropic.api_key not in r.text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_upstream_overloaded_everywhere_is_502_or_anthropic_529(
    gw, fake_openai, fake_anthropic, surface, stream
) -> None:
    """The external contract: every target failed -> 502; Anthropic clients get their own 529 overloaded_error."""
    fake_openai.enqueue(Fault("status", status=503, message="busy"))
    fake_anthropic.enqueue(Fault("status", status=529, error_type="overloaded_error", message="Overloaded"))
    r, _ = post(gw, surface, "persona:dev", stream=stream)
    assert r.status_code == (529 if surface == "anthropic" else 502), r.text
    assert r.headers["x-ep-attempts"] == "2"
    assert error_of(surface, r)["type"] == "overloaded_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", SURFACES)
def test_upstream_timeout_is_504(gw, fake_openai, surface, stream) -> None:
    fake_openai.enqueue(Fault("slow_first_byte", delay=1.5))
    r, _ = post(gw, surface, "persona:patient", stream=stream)
    assert r.status_code == 504, r.text
    assert r.headers["x-ep-attempts"] == "1"
    err = error_of(surface, r)
    assert err["type"] in ("timeout_error", "api_error")


def test_capabilities_serve_the_router_table(gw) -> None:
    data = httpx.get(gw.url + "/capabilities").json()
    models, personas = data["models"], data["personas"]
    assert models["openai/gpt-3.5-turbo"]["context_window"] == 9000  # the config override
    assert models["openai/gpt-3.5-turbo"]["vision"] is False
    assert models["gemini/gemini-2.5-flash"]["vision"] is True
    seer = personas["seer"]
    assert [t["target"] for t in seer["targets"]] == ["openai/gpt-3.5-turbo", "gemini/gemini-2.5-flash"]
    assert seer["targets"][0]["capabilities"]["context_window"] == 9000
    assert set(personas) == {"dev", "reviewer", "seer", "blind", "patient"}

    one = httpx.get(gw.url + "/capabilities", params={"model": "persona:seer"}).json()
    assert one["personas"] == {"seer": seer} and one["models"] == {}
    direct = httpx.get(gw.url + "/capabilities", params={"model": "openai/gpt-3.5-turbo"}).json()
    assert direct["models"] == {"openai/gpt-3.5-turbo": models["openai/gpt-3.5-turbo"]}
    missing = httpx.get(gw.url + "/capabilities", params={"model": "persona:nobody"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "persona_not_found"


def test_capabilities_without_config_are_the_adapter_defaults(make_gateway) -> None:
    gw = make_gateway(extra_models=("openai/gpt-3.5-turbo",))
    data = httpx.get(gw.url + "/capabilities").json()
    expected = gw.gateway.client.provider("openai").default_capabilities("gpt-3.5-turbo").model_dump()
    assert data["models"]["openai/gpt-3.5-turbo"] == expected
    assert set(data["models"]) - {"openai/gpt-3.5-turbo"} <= {"local"}  # listed when its model is installed
    assert "personas" not in data


def test_config_override_applies_to_direct_addresses(make_gateway, fake_openai) -> None:
    """A capability switched off in the config is refused at the gateway for a direct address too."""
    config = parse_config(CONFIG.replace("capabilities:\n", "capabilities:\n  openai/gpt-4o-mini: {vision: false}\n"))
    gw = make_gateway(config=config)
    r, _ = post(gw, "openai", "openai/gpt-4o-mini", image=True)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    assert fake_openai.requests == []


def test_health_counts_keys_from_the_yaml(make_gateway, fake_gemini) -> None:
    config = parse_config(
        f"providers:\n  gemini: {{api_key: {fake_gemini.api_key}}}\n"
        "deployments:\n  - {name: spare, provider: anthropic, model: claude-sonnet-4-5, api_key: other-key}\n"
        "personas:\n  reviewer: {targets: [gemini/gemini-2.5-flash]}\n"
    )
    gw = make_gateway({"gemini_api_key": None, "anthropic_api_key": None, "openai_api_key": None}, config=config)
    providers = httpx.get(gw.url + "/health").json()["providers"]
    assert providers["gemini"] == {"configured": True}
    assert providers["anthropic"] == {"configured": True}  # through the deployment's own key
    assert providers["openai"] == {"configured": False}
    fake_gemini.enqueue(Reply(text="key from the yaml"))
    r, text = post(gw, "openai", "persona:reviewer")
    assert r.status_code == 200 and text == "key from the yaml"
    no_key, _ = post(gw, "openai", "openai/gpt-4o-mini")
    assert no_key.status_code >= 400
