"""uvicorn's httptools protocol with a deadline for the request headers (slowloris).

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but has no limit on how long a
client may take to send its headers: a fresh connection that sends nothing, or one byte a minute,
is held forever, and enough of them exhaust the process's file descriptors. This subclass arms a
timer when a connection opens and when a read leaves a new request's headers incomplete, cancels it
when the headers are complete, and closes the connection when it fires.

The timeout reaches worker processes through ``EP_SERVER_HEADER_TIMEOUT`` (set by ``ep serve``
from its flag or the config's ``server.header_timeout``), because uvicorn spawns workers that import
this class by name and cannot carry a value set on it in the parent.

It also writes a response's head and the body that follows it in one system call (see
:class:`HeadWithBody`), and keeps uvicorn's keep-alive timeout with one timer per idle spell.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_ENV = "EP_SERVER_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0


def header_timeout() -> float:
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT))
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT
    return value if value > 0 else DEFAULT_HEADER_TIMEOUT


_CHUNKED = b"\r\ntransfer-encoding: chunked\r\n"  # a stream's head: its body comes in later turns


class HeadWithBody:
    """The connection's transport, holding a response head back until the body written after it.

    uvicorn writes the status line and headers as soon as the app sends ``http.response.start`` and
    the body when it sends ``http.response.body``; uvloop sends each write at once, so every JSON
    answer cost two ``send`` calls and two TCP segments. A head with a length is held instead: the
    next write (the body, nearly always in the same step of the same task) goes out joined to it,
    and one that no write follows in this turn of the event loop goes out alone on the next turn.
    A chunked head (a stream, whose events come in later turns) is written at once, as before. Order is kept, since every write of the connection
    passes through here; close() sends what is held first.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif type(data) is bytes and data.startswith(b"HTTP/") and _CHUNKED not in data:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport's interface, used rarely
        return getattr(self._transport, name)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete ``header_timeout`` seconds after it began.

    It also keeps uvicorn's keep-alive rule (close a connection idle ``timeout_keep_alive`` seconds
    after its last response) with one timer per idle spell instead of one per response: uvicorn
    cancelled its timer on every read and armed a new one after every response, a timer created
    and cancelled per request. Here a response notes when the connection fell idle and arms the
    timer only if none is armed; a read marks it busy. When the timer fires it closes the connection
    if it has been idle long enough, else waits for the rest (or, when busy, for the next response).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout()  # per connection: the parent sets it after importing us
        self._header_timer: asyncio.TimerHandle | None = None
        self._headers_pending = False  # a request has begun whose headers are not complete yet
        self._idle_since: float | None = None  # loop time of the last response, None while busy
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- keep-alive -------------------------------------------------------------------------------
    def _unset_keepalive_if_required(self) -> None:
        # uvicorn's hook on every read (and after a response, before re-arming): busy, not idle.
        self._idle_since = None

    def on_response_complete(self) -> None:
        if self.pipeline or self.transport.is_closing():
            super().on_response_complete()  # the next pipelined request starts (no keep-alive wait)
            return
        # uvicorn's own steps for a connection left idle, with the timer armed lazily
        self.server_state.total_requests += 1
        self.flow.resume_reading()
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None:
            return  # a request is under way: its response arms the timer again
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._idle_check)
        else:
            self.timeout_keep_alive_handler()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast("asyncio.Transport", HeadWithBody(transport, self.loop)))
        self._arm_header_timer()  # a connection that never sends a byte is covered too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_pending = True  # the next request on a keep-alive connection

    def on_headers_complete(self) -> None:
        self._headers_pending = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Armed only for headers still incomplete once this read is parsed: a request whose headers
        # came whole in one read (nearly every one) costs no timer at all.
        if self._headers_pending:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)
