"""Shared pieces of the request-parameter attack tests: a gateway per config and per-surface bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from execution_platform.config.file import parse_config
from tests.fakes.base import FakeUpstream
from tests.gateway.server import GatewayServer, start_gateway

MASTER = "master-test-key-123456"
PATHS = {"native": "/chat", "openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
UPSTREAMS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}


@pytest.fixture
def start(fake_servers: dict[str, FakeUpstream]) -> Iterator[Callable[..., GatewayServer]]:
    """Start a gateway for one test from a YAML config (and extra settings), stopped afterwards."""
    started: list[GatewayServer] = []

    def make(config: str = "", **settings: Any) -> GatewayServer:
        fakes = {name: fake_servers[name] for name in UPSTREAMS}
        for fake in fakes.values():
            fake.reset()
        server = start_gateway(fakes, settings, config=parse_config(config) if config else None)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def body_for(surface: str, model: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if surface == "anthropic":
        out["max_tokens"] = 100
    out.update(extra)
    return out


def post(gw: GatewayServer, surface: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(gw.url + PATHS[surface], json=body, headers=headers, timeout=20)


def error_of(surface: str, r: httpx.Response) -> dict[str, Any]:
    """The error object after checking the surface's own envelope."""
    payload = r.json()
    if surface == "anthropic":
        assert payload["type"] == "error", payload
    else:
        assert set(payload) == {"error"}, payload
    return payload["error"]


def dropped(r: httpx.Response) -> set[str]:
    raw = r.headers.get("x-ep-dropped-params", "")
    return {name for name in raw.split(",") if name}


def crossed(fake: FakeUpstream) -> dict[str, Any]:
    """What the upstream received on its last model call."""
    body = fake.last_body
    assert isinstance(body, dict), body
    return body


def text_of(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()
