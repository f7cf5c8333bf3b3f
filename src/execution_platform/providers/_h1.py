"""A small HTTP/1.1 keep-alive client for the providers' chat calls: ``asyncio.Protocol`` + httptools.

Why it exists beside aiohttp: measured against the same upstream (``bench/http_client.py``), aiohttp
spends about three times this client's CPU on a small JSON POST (a ``ClientRequest``, a
``ClientResponse``, a ``StreamReader``, a body-writer task and a connector round per call), and the
gateway makes one such call per request. httptools is the parser uvicorn already serves with.

Its scope is what a provider's chat call needs and nothing more: a POST with a bytes body to a fixed
URL, an answer read whole or chunk by chunk (content-length, chunked or close-delimited; gzip/deflate
decoded if an upstream compresses unasked), kept-alive connections reused per origin, TLS through
the event loop. No redirects, cookies, proxies or retries; everything else goes through aiohttp
(:class:`.http.HttpClient`). Timeouts are the caller's ``Deadline``; only connecting has its own.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# Read no further ahead of a slow consumer than this (a stream's chunks wait in the socket instead).
_HIGH_WATER = 256 * 1024
# An idle connection older than this is closed rather than reused: servers drop idle keep-alive
# connections after some seconds, and a request written into one that is closing fails.
_IDLE_REUSE = 15.0
_MAX_IDLE_PER_ORIGIN = 256
# An answer's headers beyond this are refused (an upstream gone wrong must not fill the memory).
_MAX_HEADER_BYTES = 64 * 1024


class ConnectionLost(ConnectionError):
    """The upstream closed the connection (or sent something that is not HTTP) before the answer ended."""


class InvalidTarget(OSError):
    """The URL is not one this client can call (not http or https, no host)."""


class Target:
    """One endpoint's origin and request head, encoded once: per call only the length and body are added."""

    __slots__ = ("head", "host", "origin", "port", "reuse", "tls", "url")

    def __init__(self, url: str, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise InvalidTarget(f"not an http(s) URL: {url!r}")
        self.url = url
        self.tls = parsed.scheme == "https"
        self.host = parsed.raw_host
        self.port = parsed.port or (443 if self.tls else 80)
        self.origin = (self.tls, self.host, self.port)
        host = self.host if ":" not in self.host else f"[{self.host}]"
        if parsed.port is not None and not parsed.is_default_port():
            host = f"{host}:{self.port}"
        lines = [f"POST {parsed.raw_path_qs} HTTP/1.1", f"host: {host}", "accept-encoding: identity"]
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n\0") or ":" in name:
                raise InvalidTarget(f"header {name!r} has a character HTTP forbids")
            if name.lower() not in ("host", "content-length", "accept-encoding", "transfer-encoding"):
                lines.append(f"{name}: {value}")
        self.reuse = headers.get("connection", "").lower() != "close"
        try:
            self.head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidTarget(f"a header or the URL has a character HTTP cannot carry: {exc}") from exc


class _Connection(asyncio.Protocol):
    """One socket and the answer being read from it; handed back to the pool once read to the end."""

    def __init__(self, pool: H1Pool, origin: tuple[bool, str, int]) -> None:
        self.loop = pool.loop
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.whole = False  # the caller wants the whole body: no point pausing the socket
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.complete = False
        self.until_close = False
        self.keep_alive = False
        self.lost = False
        self.error: BaseException | None = None
        self.decoder: zlib._Decompress | None = None
        self.idle_since = 0.0

    # -- the exchange ------------------------------------------------------------------------------
    def send(self, head: bytes, body: bytes) -> None:
        self.status = 0
        self.raw_headers = []
        self.header_bytes = 0
        self.complete = False
        self.until_close = False
        self.whole = False
        self.decoder = None
        assert self.transport is not None
        self.transport.write(b"%b%d\r\n\r\n%b" % (head, len(body), body))

    def next_event(self) -> asyncio.Future[None]:
        """A future the next parser event (headers, body bytes, the end, an error) resolves; the
        caller awaits it and then calls :meth:`check`. A plain future rather than a coroutine: each
        wait of every call is one object less. Raises at once if the connection has already failed."""
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        return waiter

    def check(self) -> None:
        """After a wait: the connection's failure, if it has one."""
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        """Everything received so far, in one piece: the consumer's work is per piece, not per byte."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one without subclassing it

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, zlib.error) as exc:
            self._fail(ConnectionLost(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.discard(self)
        self.keep_alive = False
        if not self.complete:
            if self.until_close and self.error is None:
                self.complete = True  # a body without a length ends with the connection
            else:
                self._fail(ConnectionLost("the upstream closed the connection"))
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > _MAX_HEADER_BYTES:
            self._fail(ConnectionLost("the answer's headers are too large"))
            raise ValueError("headers too large")  # stops the parser; the error above is the one kept
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        framed = False
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered in (b"content-length", b"transfer-encoding"):
                framed = True
            elif lowered == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate", b"x-gzip"):
                self.decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by the header
        self.until_close = not framed
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None:
            body = self.decoder.decompress(body)
            if not body:
                return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and not self.whole and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self.chunks.append(rest)
                self.buffered += len(rest)
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- helpers -----------------------------------------------------------------------------------
    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class Response:
    """An answer being read; :meth:`release` (read to the end) or :meth:`close` (abandoned) ends it."""

    __slots__ = ("_conn", "_headers", "_pool", "_reuse", "status")

    def __init__(self, pool: H1Pool, conn: _Connection, reuse: bool) -> None:
        self._pool = pool
        self._conn = conn
        self._reuse = reuse
        self._headers: CIMultiDictProxy[str] | None = None
        self.status = conn.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            self._headers = CIMultiDictProxy(
                CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in self._conn.raw_headers)
            )
        return self._headers

    async def read(self) -> bytes:
        """The whole body (then the connection goes back to the pool if it may be kept)."""
        conn = self._conn
        conn.whole = True
        if conn.paused and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        while not conn.complete:
            await conn.next_event()
            conn.check()
        body = conn.take() if conn.chunks else b""
        self.release()
        return body

    def read_now(self) -> bytes | None:
        """The whole body if it has all arrived already (then as :meth:`read` leaves it), else None.

        A small answer usually comes in the same packet as its head: reading it needs no wait, so
        no coroutine and no timer for one."""
        conn = self._conn
        if not conn.complete:
            return None
        body = conn.take() if conn.chunks else b""
        self.release()
        return body

    def readany_now(self) -> bytes | None:
        """What :meth:`readany` would return without waiting: the bytes received so far, ``b""`` once
        the body has ended, or None when the next piece is still to come."""
        conn = self._conn
        if conn.chunks:
            return conn.take()
        return b"" if conn.complete else None

    async def readany(self) -> bytes:
        """The next piece of the body as it arrives; ``b""`` once it has ended."""
        conn = self._conn
        while not conn.chunks:
            if conn.complete:
                return b""
            await conn.next_event()
            conn.check()
        return conn.take()

    def release(self) -> None:
        """Done with the answer: a connection read to its end is kept for the next call, else closed."""
        conn = self._conn
        if conn.complete and not conn.chunks and conn.keep_alive and self._reuse and not conn.lost:
            self._pool.put(conn)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection (the upstream sees the caller go away)."""
        self._pool.discard(self._conn)
        self._conn.close()


class H1Pool:
    """Kept-alive connections per origin, for one event loop (connections cannot cross loops)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, tls: ssl.SSLContext | None = None, limit: int = 1000
    ) -> None:
        self.loop = loop
        self.limit = limit  # connections open or opening at once, across origins; more calls wait
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ssl = tls  # the system's trust store unless given
        self.closed = False

    async def post(self, target: Target, body: bytes, *, connect_timeout: float) -> Response:
        """Send ``body`` to ``target``; returns once the answer's status and headers are in."""
        if self.closed:
            raise RuntimeError("the connection pool is closed")
        conn = self._idle_connection(target.origin) or await self._new_connection(target, connect_timeout)
        try:
            conn.send(target.head, body)
            while not conn.status:
                await conn.next_event()
                conn.check()
        except BaseException:
            self.discard(conn)
            conn.close()
            raise
        return Response(self, conn, target.reuse)

    def put(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= _MAX_IDLE_PER_ORIGIN:
            self.discard(conn)
            conn.close()
            return
        conn.idle_since = self.loop.time()
        idle.append(conn)
        if self._waiters:
            self._wake_one()

    def discard(self, conn: _Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            if self._waiters:
                self._wake_one()

    async def aclose(self) -> None:
        self.closed = True
        conns, self._open = self._open, set()
        self._idle.clear()
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.sleep(0)  # let the transports finish closing on this loop

    # -- internals ---------------------------------------------------------------------------------
    def _idle_connection(self, origin: tuple[bool, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_usable = self.loop.time() - _IDLE_REUSE
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closing
            if not conn.lost and conn.idle_since >= oldest_usable and conn.transport is not None \
                    and not conn.transport.is_closing():
                return conn
            self.discard(conn)
            conn.close()
        return None

    async def _new_connection(self, target: Target, timeout: float) -> _Connection:
        """A new connection, once the pool is under its limit (closing an idle one, or waiting)."""
        while len(self._open) + self._connecting >= self.limit:
            if not self._close_an_idle():
                waiter = self.loop.create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
            conn = self._idle_connection(target.origin)
            if conn is not None:
                return conn
        self._connecting += 1
        try:
            return await self._connect(target, timeout)
        finally:
            self._connecting -= 1

    def _close_an_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                conn = idle.pop(0)  # the oldest
                self.discard(conn)
                conn.close()
                return True
        return False

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, target: Target, timeout: float) -> _Connection:
        conn = _Connection(self, target.origin)
        context = self._tls() if target.tls else None
        async with asyncio.timeout(timeout):
            transport, _ = await self.loop.create_connection(
                lambda: conn, target.host, target.port, ssl=context, server_hostname=target.host if context else None
            )
        conn.transport = transport  # uvloop calls ``connection_made`` on its next turn only
        self._open.add(conn)
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl
