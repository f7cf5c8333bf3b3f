"""The machinery every fake shares: an aiohttp server on a free loopback port in its own thread.

Running in a thread (with its own event loop) lets synchronous official SDK clients and async tests
use the same fake. Each fake records every request it received (method, path, headers, JSON body) and
counts open connections, so tests can prove that cancellation really closed the upstream connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .script import Fault, Reply, Script


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeUpstream:
    """Base class. Subclasses add routes in :meth:`routes` and render scripts in their wire format."""

    provider = "fake"

    def __init__(self, *, api_key: str = "test-key", default: Script | None = None) -> None:
        self.api_key = api_key
        self.default: Script = default or Reply()
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.open_connections = 0
        self.connections_closed = 0
        self._server: asyncio.Server | None = None

    # -- scripting ----------------------------------------------------------------------------
    def enqueue(self, *scripts: Script) -> None:
        with self._lock:
            self._queue.extend(scripts)

    def next_script(self) -> Script:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def last_body(self) -> Any:
        """The JSON body of the last POST: exactly what crossed to this upstream."""
        posts = [r for r in self.requests if r.method == "POST"]
        return posts[-1].body if posts else None

    # -- addressing ---------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL in the form the official SDK expects (overridden where it includes /v1)."""
        return self.origin

    # -- subclass hooks -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def check_auth(self, request: web.Request) -> bool:
        raise NotImplementedError

    def auth_error(self) -> web.Response:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.provider}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        handler_factory = self._runner.server
        assert handler_factory is not None
        fake = self

        def counting_factory() -> asyncio.Protocol:
            """Wrap aiohttp's protocol so opened/closed connections are observable by tests."""
            return _CountingProtocol(handler_factory(), fake)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(counting_factory, "127.0.0.1", 0, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connections_closed(self, baseline: int, timeout: float = 2.0) -> bool:
        """Wait until more than ``baseline`` connections have closed; True if it happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connections_closed > baseline:
                return True
            time.sleep(0.005)
        return False

    # -- middleware ---------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        if not self.check_auth(request):
            return self.auth_error()
        return await handler(request)

    # -- helpers for subclasses -----------------------------------------------------------------
    @staticmethod
    def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
        )

    @staticmethod
    async def sse_response(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={"content-type": "text/event-stream", "cache-control": "no-cache", "connection": "keep-alive"},
        )
        await resp.prepare(request)
        return resp

    @staticmethod
    def drop_connection(request: web.Request) -> None:
        """Abort the TCP connection mid-response, as a crashed upstream or proxy would."""
        transport = request.transport
        if transport is not None:
            transport.abort()

    @staticmethod
    def split_text(text: str, chunks: int) -> list[str]:
        if not text:
            return []
        chunks = max(1, min(chunks, len(text)))
        size = -(-len(text) // chunks)
        return [text[i : i + size] for i in range(0, len(text), size)]

    @staticmethod
    def last_user_text(messages_text: list[str]) -> str:
        return messages_text[-1] if messages_text else ""

    async def apply_pre_fault(self, script: Script) -> Script:
        """Handle faults that happen before any byte is sent; returns the script to render."""
        if isinstance(script, Fault) and script.kind == "slow_first_byte":
            await asyncio.sleep(script.delay)
            return script.then or Reply()
        return script


class _CountingProtocol(asyncio.Protocol):
    """Delegates to aiohttp's request handler (whose methods cannot be patched) and counts connections."""

    def __init__(self, inner: asyncio.Protocol, fake: FakeUpstream) -> None:
        self._inner = inner
        self._fake = fake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._fake.open_connections += 1
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fake.open_connections -= 1
        self._fake.connections_closed += 1
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def sleep_forever_or(delay: float) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(delay)
