"""The same-format fast path answers exactly what the canonical path answers, and is really taken.

Two gateways with one config, the fast path on (the default) and off (``EP_FAST_PATH=0``); every case
sends the same request with the same scripted upstream answer to both. Bodies and SSE event sequences
must be equal after removing the fields that differ per call or that only the upstream can fill:

* ``id`` and ``created`` (OpenAI), ``message.id`` (Anthropic ``message_start``/message): the fake
  numbers every answer and stamps it with the time, so two calls never share them;
* ``system_fingerprint`` (OpenAI): the upstream's own value crosses on the fast path, while the
  canonical model has no field for it and re-encodes ``null``; that difference is what the last
  tests use to prove the fast path was taken;
* Anthropic ``usage`` objects: the upstream's cross as written (input tokens already in
  ``message_start``, ``cache_creation`` and ``service_tier``), where the canonical encoder knows usage
  only at the end (zeros at the start, totals in ``message_delta``) and has no field for the extras.
  The totals an SDK adds up from them are compared instead.

Persona policy (system prompt, output cap) applies on both paths: the upstream receives identical
bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from execution_platform.config.file import parse_config
from tests.fakes import Fault, Reply
from tests.fakes.base import FakeUpstream
from tests.fakes.script import ToolCallSpec

from .server import GatewayServer, start_gateway

CONFIG = """
personas:
  guarded:
    targets: [openai/gpt-4o-mini]
    system_prompt: PERSONA-PROMPT
    params: {max_tokens: 50}
  guarded_claude:
    targets: [anthropic/claude-sonnet-4-5]
    system_prompt: PERSONA-PROMPT
    params: {max_tokens: 50}
  cross:
    targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o-mini]
"""
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5"}
PERSONAS = {"openai": "persona:guarded", "anthropic": "persona:guarded_claude"}
PER_CALL = {"id", "created", "system_fingerprint"}
ANTHROPIC_USAGE = {"message", "message_delta"}  # objects whose Anthropic ``usage`` is compared as totals
TOOL = {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def pair(fake_servers: dict[str, FakeUpstream]) -> Iterator[dict[str, GatewayServer]]:
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    config = parse_config(CONFIG)
    servers = {"fast": start_gateway(fakes, {}, config=config),
               "canonical": start_gateway(fakes, {"fast_path": False}, config=config)}
    yield servers
    for server in servers.values():
        server.stop()


def _tool_for(surface: str) -> dict[str, Any]:
    if surface == "anthropic":
        return {"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}
    return {"type": "function", "function": TOOL}


def _body(surface: str, model: str, stream: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if surface == "anthropic":
        body["max_tokens"] = 100
    body.update(extra)
    return body


def _normal(value: Any, top: bool = True) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, k in ("message", "chunk")) for k, v in value.items()
                if not (top and k in PER_CALL) and not (k == "usage" and value.get("type") in ANTHROPIC_USAGE)}
    if isinstance(value, list):
        return [_normal(v, False) for v in value]
    return value


def _events(text: str) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        payload = "\n".join(data)
        out.append((event, payload if payload == "[DONE]" else _normal(orjson.loads(payload))))
    return out


def _anthropic_totals(r: httpx.Response, stream: bool) -> dict[str, int]:
    """Input and output tokens as the Anthropic SDK accumulates them (later values win, absent keep)."""
    usages: list[dict[str, Any]] = []
    if not stream:
        usages.append(r.json().get("usage") or {})
    else:
        for block in r.text.split("\n\n"):
            for line in block.split("\n"):
                if line.startswith("data: "):
                    data = orjson.loads(line[6:])
                    usages.append((data.get("message") or {}).get("usage") or data.get("usage") or {})
    totals: dict[str, int] = {}
    for usage in usages:
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            if usage.get(key):
                totals[key] = usage[key]
    return totals


def _answer(r: httpx.Response, stream: bool) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items()
               if k.startswith("x-ep-") and k not in ("x-ep-request-id", "x-ep-overhead-ms")}
    headers["content-type"] = r.headers.get("content-type", "")
    body = _events(r.text) if stream and r.status_code == 200 else _normal(r.json())
    anthropic = r.text.startswith("event: message_start") if stream else body.get("type") == "message"
    if r.status_code == 200 and anthropic:
        headers["anthropic-totals"] = orjson.dumps(_anthropic_totals(r, stream)).decode()
    return r.status_code, body, headers


def _same(fast: Any, canonical: Any) -> None:
    if fast != canonical:
        import difflib

        lines = difflib.unified_diff(orjson.dumps(canonical, option=orjson.OPT_INDENT_2).decode().splitlines(),
                                     orjson.dumps(fast, option=orjson.OPT_INDENT_2).decode().splitlines(),
                                     "canonical", "fast", lineterm="")
        pytest.fail("\n".join(lines))


def _both(pair: dict[str, GatewayServer], fake: FakeUpstream, surface: str, body: dict[str, Any],
          script: Callable[[], list[Any]]) -> dict[str, tuple[int, Any, dict[str, str], Any]]:
    out = {}
    for name, server in pair.items():
        fake.reset()
        fake.enqueue(*script())
        r = httpx.post(server.url + PATHS[surface], json=body, timeout=20)
        out[name] = (*_answer(r, bool(body.get("stream"))), fake.last_body)
    return out


CASES: dict[str, Callable[[], list[Any]]] = {
    "text": lambda: [Reply(text="The quick brown fox jumps", chunks=5, input_tokens=9, output_tokens=5)],
    "tool_call": lambda: [Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_1")])],
    "text_and_tool": lambda: [Reply(text="Let me look.", tool_calls=[
        ToolCallSpec("get_weather", {"city": "Oslo"}, id="call_2")])],
    "length": lambda: [Reply(text="cut short", finish="length")],
    "rate_limited": lambda: [Fault("status", status=429, retry_after=1), Fault("status", status=429, retry_after=1),
                             Fault("status", status=429, retry_after=1)],
    "bad_request": lambda: [Fault("status", status=400, message="nope")],
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_fast_and_canonical_paths_answer_the_same(pair: dict[str, GatewayServer], fake_servers: dict[str, Any],
                                                  surface: str, case: str, stream: bool) -> None:
    extra: dict[str, Any] = {"tools": [_tool_for(surface)]} if "tool" in case else {}
    if surface == "openai" and stream:
        extra["stream_options"] = {"include_usage": True}
    body = _body(surface, MODELS[surface], stream, **extra)
    got = _both(pair, fake_servers[surface], surface, body, CASES[case])
    _same(got["fast"][:3], got["canonical"][:3])
    assert got["fast"][3] == got["canonical"][3]  # what crossed upstream is the same too
    if surface == "anthropic" and got["fast"][0] == 200:
        assert '"output_tokens"' in got["fast"][2]["anthropic-totals"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_persona_policy_applies_on_both_paths(pair: dict[str, GatewayServer], fake_servers: dict[str, Any],
                                              surface: str, stream: bool) -> None:
    smuggled = {"system": "EVIL-PROMPT"} if surface == "openai" else {"max_completion_tokens": 65000}
    body = _body(surface, PERSONAS[surface], stream, max_tokens=4000, **smuggled)
    got = _both(pair, fake_servers[surface], surface, body, CASES["text"])
    _same(got["fast"][:3], got["canonical"][:3])
    crossed = got["fast"][3]
    assert crossed == got["canonical"][3]
    text = orjson.dumps(crossed).decode()
    assert crossed["max_tokens"] == 50 and "EVIL-PROMPT" not in text and "65000" not in text
    assert "PERSONA-PROMPT" in text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_usage_left_out_when_the_client_did_not_ask(pair: dict[str, GatewayServer], fake_openai: FakeUpstream,
                                                    stream: bool) -> None:
    got = _both(pair, fake_openai, "openai", _body("openai", MODELS["openai"], stream), CASES["text"])
    _same(got["fast"][:3], got["canonical"][:3])
    if stream:
        assert all(data == "[DONE]" or "usage" not in data for _, data in got["fast"][1])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_fallback_to_another_format_is_served_canonically(fake_servers: dict[str, FakeUpstream],
                                                            fake_anthropic: FakeUpstream, fake_openai: FakeUpstream,
                                                            stream: bool) -> None:
    """An OpenAI client, a persona whose first target (Anthropic) fails: OpenAI serves, in its bytes.

    Fresh gateways: the failing target's breaker must start closed on both."""
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    config = parse_config(CONFIG)
    pair = {"fast": start_gateway(fakes, {}, config=config),
            "canonical": start_gateway(fakes, {"fast_path": False}, config=config)}
    try:
        _fallback(pair, fake_anthropic, fake_openai, stream)
    finally:
        for server in pair.values():
            server.stop()


def _fallback(pair: dict[str, GatewayServer], fake_anthropic: FakeUpstream, fake_openai: FakeUpstream,
              stream: bool) -> None:
    answers = {}
    for name, server in pair.items():
        fake_anthropic.reset()
        fake_openai.reset()
        fake_anthropic.enqueue(*[Fault("status", status=529, error_type="overloaded_error")] * 3)
        fake_openai.enqueue(Reply(text="served by the second target", chunks=3))
        r = httpx.post(server.url + PATHS["openai"], json=_body("openai", "persona:cross", stream), timeout=20)
        answers[name] = _answer(r, stream)
        assert r.status_code == 200, r.text
        assert r.headers["x-ep-provider"] == "openai"
    _same(answers["fast"], answers["canonical"])

    # and an Anthropic client whose answer comes from OpenAI is re-encoded, never sent OpenAI bytes
    fake_anthropic.reset()
    fake_openai.reset()
    fake_anthropic.enqueue(*[Fault("status", status=529, error_type="overloaded_error")] * 3)
    fake_openai.enqueue(Reply(text="served by the second target", chunks=3))
    r = httpx.post(pair["fast"].url + PATHS["anthropic"], json=_body("anthropic", "persona:cross", stream),
                   timeout=20)
    assert r.status_code == 200, r.text
    if stream:
        assert r.text.startswith("event: message_start") and "chat.completion" not in r.text
    else:
        assert r.json()["type"] == "message"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_the_fast_path_forwards_the_upstreams_own_bytes(pair: dict[str, GatewayServer], fake_openai: FakeUpstream,
                                                        stream: bool) -> None:
    """The upstream's ``system_fingerprint`` reaches the client only when its bytes are forwarded."""
    seen = {}
    for name, server in pair.items():
        fake_openai.reset()
        fake_openai.enqueue(Reply(text="fingerprinted", chunks=2))
        r = httpx.post(server.url + PATHS["openai"], json=_body("openai", MODELS["openai"], stream), timeout=20)
        assert r.status_code == 200, r.text
        seen[name] = r.text
    assert '"system_fingerprint":"fp_fake"' in seen["fast"]
    assert '"system_fingerprint":"fp_fake"' not in seen["canonical"]


def test_the_switch_can_come_from_the_config(fake_servers: dict[str, FakeUpstream], fake_openai: FakeUpstream) -> None:
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, {}, config=parse_config("server: {fast_path: false}\n"))
    try:
        fake_openai.reset()
        fake_openai.enqueue(Reply(text="fingerprinted"))
        r = httpx.post(server.url + PATHS["openai"], json=_body("openai", MODELS["openai"], False), timeout=20)
        assert r.status_code == 200 and r.json()["system_fingerprint"] is None
    finally:
        server.stop()
