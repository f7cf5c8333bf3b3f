"""One pooled async HTTP client shared by the HTTP providers, with explicit timeouts.

This is the public transport layer of ``providers``: the pool (:class:`HttpClient`,
:func:`shared_client`, :func:`close_shared_pool`), :class:`Timeouts`, and the mapping of transport
failures into the error taxonomy (:func:`transport_error`). Routing, the client and the gateway use
these names; nothing outside ``providers`` needs the pool's internals.

aiohttp was chosen over httpx by measurement (``bench/http_client.py``): for small JSON posts and SSE streams over keep-alive connections it spends markedly less CPU
per request, and the gateway sits on every call. The HTTP adapters' calls (chat, streams, token
counts, embeddings) now go through :class:`H1Pool`, a small keep-alive client on httptools that
spends about a third of aiohttp's CPU per call in the same benchmark; the aiohttp session stays for
callers that want a general-purpose client, and is only made when one asks for it. aiohttp itself is
imported then too: a serving process whose calls all go through the pool never loads it (about 7 MB
of resident memory with its dependencies and the TLS context with the CA store it builds at import).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import EPError, UpstreamConnectionError, UpstreamTimeoutError
from ._h1 import ConnectionLost, H1Pool, InvalidTarget, Response, Target

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ConnectionLost", "Deadline", "H1Pool", "HttpClient", "InvalidTarget", "Response", "Target", "Timeouts",
    "close_shared_pool", "loads", "shared_client", "transport_error",
]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` bounds the wait for the first byte of the answer (time to first token);
    ``stream_idle`` bounds the silence between two chunks of a stream; ``total`` the whole call."""

    connect: float = 10.0
    read: float = 120.0
    total: float = 600.0
    stream_idle: float = 60.0


class HttpClient:
    """The keep-alive pool the HTTP adapters call through (:class:`H1Pool`, for its CPU cost per call)
    and a lazily created general-purpose ``aiohttp.ClientSession``, both bound to the running loop.

    Sessions cannot cross event loops, so a new one is made if the loop changes (tests, the sync
    wrapper); in a server process one session serves every request.
    """

    def __init__(self, *, limit: int = 1000, limit_per_host: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._h1: H1Pool | None = None
        self._limit = limit
        self._limit_per_host = limit_per_host

    def h1(self, loop: asyncio.AbstractEventLoop) -> H1Pool:
        """The keep-alive pool for chat calls on ``loop`` (the running one)."""
        pool = self._h1
        if pool is None or pool.closed or pool.loop is not loop:
            pool = self._h1 = H1Pool(loop)
        return pool

    def session(self, loop: asyncio.AbstractEventLoop | None = None) -> aiohttp.ClientSession:
        """The pool's session on the running loop (``loop``, when the caller already holds it)."""
        loop = loop or asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                auto_decompress=True,
                trust_env=False,
            )
            self._loop = loop
        return self._session

    def bound_to(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the current session or pool was made on ``loop`` (neither can cross loops)."""
        return self._loop is loop or (self._h1 is not None and self._h1.loop is loop)

    async def aclose(self) -> None:
        pool, self._h1 = self._h1, None
        if pool is not None and pool.loop is asyncio.get_running_loop():
            await pool.aclose()  # a pool of another loop: its sockets belong to that loop, left to it
        if self._session is not None and not self._session.closed:
            try:
                await self._session.close()
            except RuntimeError:
                pass  # loop already closed
        self._session = None


_shared: HttpClient | None = None


def shared_client() -> HttpClient:
    """The process-wide client every provider uses unless given its own."""
    global _shared
    if _shared is None:
        _shared = HttpClient()
    return _shared


async def close_shared_pool() -> None:
    """Close the process-wide pool if it lives on the running loop (a server shutting down).

    A pool bound to another loop is left alone: its sessions belong to that loop, and the next
    :meth:`HttpClient.session` call on a new loop replaces them anyway.
    """
    pool = _shared
    if pool is not None and pool.bound_to(asyncio.get_running_loop()):
        await pool.aclose()


def transport_error(exc: BaseException, provider: str, what: str) -> EPError:
    """Map a transport-level exception (no HTTP answer) into the taxonomy.

    aiohttp's exceptions are looked up only if aiohttp is loaded: if it is not, none of them exists.
    """
    client_lib = sys.modules.get("aiohttp")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or (
        client_lib is not None and isinstance(exc, client_lib.ServerTimeoutError)
    ):
        return UpstreamTimeoutError(f"{provider}: timed out {what}", provider=provider)
    if isinstance(exc, ConnectionLost) or (
        client_lib is not None and isinstance(exc, client_lib.ClientPayloadError | client_lib.ServerDisconnectedError)
    ):
        return UpstreamConnectionError(f"{provider}: connection lost {what}", provider=provider)
    if isinstance(exc, OSError) or (client_lib is not None and isinstance(exc, client_lib.ClientError)):
        return UpstreamConnectionError(f"{provider}: cannot connect {what}: {type(exc).__name__}", provider=provider)
    raise exc


class Deadline:
    """``async with asyncio.timeout(seconds)`` for a caller that already holds the running loop.

    The same ``TimeoutError`` and the same cancellation rules (the task is cancelled when the time is
    up, and the cancellation becomes ``TimeoutError`` only if it is the one this deadline made), but
    neither the running loop nor the current task is looked up through ``get_running_loop``, which
    on Python 3.11 makes a ``getpid`` system call each time: ``asyncio.timeout`` makes three.
    """

    __slots__ = ("_expired", "_handle", "_loop", "_seconds", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._loop = loop
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    def __enter__(self) -> Deadline:
        """Also a plain ``with`` block (inside a task): arming and disarming never wait, so the block
        needs no coroutine to enter or leave it, which a call on the hot path would pay for each use."""
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._handle = self._loop.call_later(self._seconds, self._on_timeout)
        return self

    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    def reschedule(self, seconds: float) -> None:
        """Move the deadline to ``seconds`` from now (the next phase of the same call, one timer).

        Once expired it stays expired: the task's cancellation is already on its way.
        """
        if self._expired:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_later(seconds, self._on_timeout)

    def _on_timeout(self) -> None:
        self._handle = None
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired:
            self._expired = False
            assert self._task is not None
            if self._task.uncancel() == 0 and exc_type is asyncio.CancelledError:
                raise TimeoutError


def loads(body: bytes) -> Any:
    return orjson.loads(body)
