"""The app's own front door: forwarded headers applied by uvicorn's rule, FastAPI's telemetry kept out.

``ep serve`` turns uvicorn's proxy-headers layer off and has the app apply the same rule only to
requests that carry ``X-Forwarded-For``/``-Proto``; the scope the app saw is read back after the call.
FastAPI's native OpenTelemetry would add its own spans as soon as any global tracer provider exists;
the gateway's tracing is its own, so a global provider must see no span from FastAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from execution_platform.config.settings import Settings
from execution_platform.gateway.app import create_app
from execution_platform.storage.keys import MemoryKeyStore

TRUSTED = "127.0.0.1"
PROXY = ("127.0.0.1", 50000)
STRANGER = ("198.51.100.9", 50000)
FORWARDED = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]


def app_for(tmp_path: Path, **kwargs: Any) -> FastAPI:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'ep.db'}", local_model="off")
    return create_app(settings, key_store=MemoryKeyStore(), **kwargs)


def call(app: FastAPI, method: str, path: str, client: tuple[str, int], headers: list[tuple[bytes, bytes]],
         body: bytes = b"") -> tuple[dict[str, Any], int]:
    """One request straight through the ASGI interface: the scope as the app left it, and the status."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"gateway"), (b"content-type", b"application/json"), *headers],
        "client": client, "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return scope, sent[0]["status"]


# A hot route (answered by the gateway's own front) and another one (through FastAPI).
REQUESTS = [("POST", "/v1/chat/completions", b'{"model": "x", "messages": []}'), ("GET", "/health", b"")]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_forwarded_headers_from_a_trusted_address_are_applied(tmp_path: Path, method: str, path: str,
                                                              body: bytes) -> None:
    app = app_for(tmp_path, forwarded_allow_ips=TRUSTED)
    scope, status = call(app, method, path, PROXY, FORWARDED, body)
    assert status in (200, 400)
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_forwarded_headers_from_an_untrusted_address_are_ignored(tmp_path: Path, method: str, path: str,
                                                                 body: bytes) -> None:
    app = app_for(tmp_path, forwarded_allow_ips=TRUSTED)
    scope, _ = call(app, method, path, STRANGER, FORWARDED, body)
    assert scope["client"] == STRANGER
    assert scope["scheme"] == "http"


def test_the_trusted_list_uses_uvicorns_syntax(tmp_path: Path) -> None:
    app = app_for(tmp_path, forwarded_allow_ips="10.0.0.0/8, 127.0.0.1")
    scope, _ = call(app, "GET", "/health", ("10.1.2.3", 40000), FORWARDED)
    assert scope["client"] == ("203.0.113.7", 0)
    app = app_for(tmp_path, forwarded_allow_ips="")
    scope, _ = call(app, "GET", "/health", PROXY, FORWARDED)
    assert scope["client"] == PROXY


def test_without_a_trusted_list_the_app_leaves_forwarded_headers_to_the_server(tmp_path: Path) -> None:
    scope, _ = call(app_for(tmp_path), "GET", "/health", PROXY, FORWARDED)
    assert scope["client"] == PROXY and scope["scheme"] == "http"


def test_create_app_from_env_trusts_what_ep_serve_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from execution_platform.gateway.app import FORWARDED_ENV, create_app_from_env

    monkeypatch.setenv("EP_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("EP_LOCAL_MODEL", "off")
    monkeypatch.delenv("EP_CONFIG", raising=False)
    monkeypatch.delenv("EP_MASTER_KEY", raising=False)
    monkeypatch.setenv(FORWARDED_ENV, "127.0.0.1")
    scope, _ = call(create_app_from_env(), "GET", "/health", PROXY, FORWARDED)
    assert scope["client"] == ("203.0.113.7", 0)


@pytest.fixture
def global_tracer_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An SDK tracer provider installed as OpenTelemetry's global one (as ``opentelemetry-instrument``
    or another library would), recording spans in memory; the previous global is restored after."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_fastapi_adds_no_telemetry_of_its_own_under_a_global_tracer_provider(
        tmp_path: Path, global_tracer_provider: Any, method: str, path: str, body: bytes) -> None:
    from opentelemetry import trace

    assert trace.get_tracer_provider() is not None
    _, status = call(app_for(tmp_path), method, path, PROXY, [], body)
    assert status in (200, 400)
    assert [span.name for span in global_tracer_provider.get_finished_spans()] == []


def test_servers_and_test_clients_take_the_app_for_asgi3(tmp_path: Path) -> None:
    import uvicorn
    from starlette._utils import is_async_callable

    app = app_for(tmp_path)
    assert is_async_callable(app)
    config = uvicorn.Config(app, proxy_headers=False, log_config=None)
    config.load()
    assert config.loaded_app is app  # not wrapped as an ASGI 2 app


def test_the_app_adds_no_coroutine_of_its_own_to_a_hot_request(tmp_path: Path) -> None:
    from execution_platform.gateway.middleware import GatewayMiddleware

    app = app_for(tmp_path)
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    awaitable = app(scope, None, None)
    try:
        assert awaitable.cr_code is GatewayMiddleware.__call__.__code__  # type: ignore[attr-defined]
    finally:
        awaitable.close()  # type: ignore[attr-defined]
