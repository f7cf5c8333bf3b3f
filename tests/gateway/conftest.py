"""Fixtures: the gateway served by uvicorn in a thread, in front of the fake upstreams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.base import FakeUpstream

from .server import GatewayServer, start_gateway

MASTER = "master-test-key-123456"


@pytest.fixture(scope="session")
def gateway_server(fake_servers: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """One open (no master key) gateway for the session, in front of all three fakes."""
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, {"workspace_root": tmp_path_factory.mktemp("workspace")})
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_server: GatewayServer, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream,
            fake_gemini: FakeUpstream) -> GatewayServer:
    """The shared gateway, with every fake reset for this test."""
    return gateway_server


@pytest.fixture
def make_gateway(fake_servers: dict[str, FakeUpstream]) -> Iterator[Callable[..., GatewayServer]]:
    """Start a gateway with its own settings/options for one test."""
    started: list[GatewayServer] = []

    def make(settings: dict[str, Any] | None = None, **kwargs: Any) -> GatewayServer:
        fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
        for fake in fakes.values():
            fake.reset()
        server = start_gateway(fakes, settings, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(params=["fast_path", "canonical_path"])
def either_path(request: pytest.FixtureRequest, gateway: GatewayServer) -> Iterator[GatewayServer]:
    """The shared gateway with its same-format fast path on, then off (read per call, so per test)."""
    settings = gateway.gateway.settings
    saved = settings.fast_path
    settings.fast_path = request.param == "fast_path"
    try:
        yield gateway
    finally:
        settings.fast_path = saved
