"""No provider key in any response body, header or log line, including upstream auth failures."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import Fault, Reply
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

from .server import GatewayServer, start_gateway

KEYS = {"openai": "sk-leakcheck-openai-0001", "anthropic": "leakcheck-anthropic-0002",
        "gemini": "AIzaLeakcheckGemini0003xxxxxxxxxx"}
WRONG = "sk-leakcheck-wrongkey-0004"
MASTER = "leakcheck-master-0005"


@pytest.fixture
def fakes() -> Iterator[dict]:
    started = {"openai": FakeOpenAI(api_key=KEYS["openai"]).start(),
               "anthropic": FakeAnthropic(api_key=KEYS["anthropic"]).start(),
               "gemini": FakeGemini(api_key=KEYS["gemini"]).start()}
    yield started
    for fake in started.values():
        fake.stop()


def _exchanges(gw: GatewayServer, fakes: dict) -> list[httpx.Response]:
    auth = {"authorization": f"Bearer {MASTER}"}
    out: list[httpx.Response] = []
    for provider, model in [("openai", "openai/gpt-4o-mini"), ("anthropic", "anthropic/claude-sonnet-4-5"),
                            ("gemini", "gemini/gemini-2.5-flash")]:
        fakes[provider].enqueue(Reply(text="fine"), Fault("status", status=500, message="boom"))
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        out.append(httpx.post(gw.url + "/v1/chat/completions", json=body, headers=auth))
        out.append(httpx.post(gw.url + "/v1/chat/completions", json=body, headers=auth))
        fakes[provider].enqueue(Reply(text="streamed"))
        out.append(httpx.post(gw.url + "/v1/chat/completions", json={**body, "stream": True}, headers=auth))
    out.append(httpx.get(gw.url + "/health"))
    out.append(httpx.get(gw.url + "/metrics", headers=auth))
    out.append(httpx.get(gw.url + "/capabilities", headers=auth))
    return out


def test_no_provider_key_leaks(fakes, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    gw = start_gateway(fakes, {"master_key": MASTER})
    bad = start_gateway(fakes, {"master_key": MASTER, "openai_api_key": WRONG})
    try:
        responses = _exchanges(gw, fakes)
        # the upstream rejects the gateway's own key: the client learns that, but never the key
        rejected = httpx.post(bad.url + "/v1/chat/completions", headers={"authorization": f"Bearer {MASTER}"},
                              json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
        responses.append(rejected)
    finally:
        gw.stop()
        bad.stop()
    assert rejected.status_code >= 400
    assert any(r.status_code == 200 for r in responses) and any(r.status_code >= 500 for r in responses)
    secrets = [*KEYS.values(), WRONG]
    for response in responses:
        blob = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in secrets:
            assert secret not in blob, (response.request.url, response.status_code)
    assert caplog.records, "expected the server to log something"
    for record in caplog.records:
        line = record.getMessage() + str(record.args or "")
        for secret in secrets:
            assert secret not in line
