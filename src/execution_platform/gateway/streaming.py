"""Server-sent events out of a canonical event stream, with no buffering and prompt cancellation.

* Headers go out as soon as the upstream has started (or after ``first_wait`` of silence), so a
  failure before the first token still gets a real HTTP status the client's SDK can map.
* Every event is written as soon as it is encoded; ``: keep-alive`` comments fill long silences so
  proxies and clients do not time out.
* A client disconnect cancels the task pumping the upstream stream; cancelling the provider's async
  generator closes the upstream connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..codecs.sse import KEEPALIVE
from ..errors import EPError, scrub
from ..model import StreamEvent
from ..routing.attempts import RoutedStream
from .coroutines import cancel, resume
from .errors import client_facing

log = logging.getLogger("execution_platform.gateway")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamHead:
    """An upstream stream whose first event has (maybe) been awaited already."""

    __slots__ = ("events", "first", "loop", "pending")

    def __init__(self, events: RoutedStream) -> None:
        self.events = events
        self.first: StreamEvent | None = None
        self.pending: asyncio.Future[StreamEvent] | None = None
        # Asked once and handed on to the response: on Python 3.11 every implicit look-up of the
        # running loop (``ensure_future`` without a loop, ``create_task``) is a getpid system call.
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def rate_limits(self) -> dict[str, str]:
        """``x-ratelimit-*`` for the response head: known once the request was admitted, first event or not."""
        return self.events.rate_limits

    async def start(self, first_wait: float) -> StreamHead:
        """Wait up to ``first_wait`` s for the first event; errors raised before it propagate to the caller."""
        self.loop = loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self.events.__anext__(), loop=loop)
        done, _ = await asyncio.wait({task}, timeout=first_wait)
        if task in done:
            try:
                self.first = task.result()
            except StopAsyncIteration:
                pass
            except BaseException:
                await self.aclose()
                raise
        else:
            self.pending = task
        return self

    async def aclose(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            with contextlib.suppress(BaseException):
                await self.pending
        with contextlib.suppress(RuntimeError):
            await self.events.aclose()


class SSEResponse(Response):
    """ASGI response pumping ``head`` through ``encode``; ``on_error`` frames an in-stream failure.

    A ``Response`` subclass only so FastAPI passes it through untouched; it does its own sending.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        head: StreamHead,
        *,
        encode: Callable[[StreamEvent], bytes],
        trailer: Callable[[], bytes],
        on_error: Callable[[EPError], bytes],
        headers: list[tuple[bytes, bytes]] | None = None,
        keepalive: float = 15.0,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.head = head
        self.encode = encode
        self.trailer = trailer
        self.on_error = on_error
        self.raw_headers = SSE_HEADERS + (headers or [])
        self.keepalive = keepalive
        self.on_done = on_done
        self._last_write = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        self._last_write = time.monotonic()
        loop = self.head.loop or asyncio.get_running_loop()
        pump = loop.create_task(self._pump(send))
        listen: asyncio.Future[Any] = asyncio.ensure_future(receive(), loop=loop)
        outcome = "ok"
        try:
            while True:
                done, _ = await asyncio.wait({pump, listen}, timeout=self.keepalive, return_when="FIRST_COMPLETED")
                if pump in done:
                    outcome = pump.result()
                    return
                if listen in done:
                    if listen.result().get("type") == "http.disconnect":
                        outcome = "cancelled"
                        pump.cancel()
                        with contextlib.suppress(BaseException):
                            await pump
                        return
                    listen = asyncio.ensure_future(receive(), loop=loop)
                    continue
                if time.monotonic() - self._last_write >= self.keepalive:
                    await self._write(send, KEEPALIVE)
        except BaseException:
            outcome = "cancelled"
            pump.cancel()
            raise
        finally:
            listen.cancel()
            await self.head.aclose()
            if self.on_done is not None:
                self.on_done(outcome)

    async def _write(self, send: Any, data: bytes) -> None:
        self._last_write = time.monotonic()
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _pump(self, send: Any) -> str:
        head, encode = self.head, self.encode
        outcome = "ok"
        try:
            if head.first is not None:
                await self._emit(send, encode(head.first))
            if head.pending is not None:
                try:
                    event = await head.pending
                except StopAsyncIteration:
                    event = None
                if event is not None:
                    await self._emit(send, encode(event))
            batches = _ready_batches(head.events)
            try:
                async for batch in batches:
                    data = encode(batch[0]) if len(batch) == 1 else b"".join([encode(event) for event in batch])
                    if data:
                        await self._write(send, data)
            finally:
                await batches.aclose()  # a half-taken upstream step must end before the stream is closed
            end = self.trailer()
        except EPError as err:
            outcome = "error"
            end = self.on_error(client_facing(err))
        except Exception as exc:  # never a traceback on the wire
            outcome = "error"
            log.error("stream failed: %s", scrub(f"{type(exc).__name__}: {exc}"))
            end = self.on_error(EPError("internal error while streaming"))
        # the trailer (or the error frame) and the end of the body: one write, not two
        await send({"type": "http.response.body", "body": end, "more_body": False})
        return outcome

    async def _emit(self, send: Any, data: bytes) -> None:
        if data:
            await self._write(send, data)


async def _ready_batches(events: AsyncIterator[StreamEvent]) -> AsyncGenerator[list[StreamEvent], None]:
    """The events in groups of those already available, so one upstream read costs one socket write.

    After awaiting an event, the next ones are taken only while the generator produces them without
    suspending (they came from the same upstream read); the first step that would wait ends the batch
    and is resumed, not restarted, for the next one. Nothing is ever held back waiting for more.
    """
    step: tuple[Any, Any] | None = None  # a started ``__anext__`` that suspended, and what it waits on
    try:
        while True:
            batch: list[StreamEvent] = []
            try:
                if step is None:
                    batch.append(await events.__anext__())
                else:
                    coro, waiting = step
                    step = None
                    batch.append(await resume(coro, waiting))
            except StopAsyncIteration:
                return
            while True:
                # An async generator's ``__anext__`` awaitable, driven by hand (send/throw) below.
                advance: Any = events.__anext__()
                try:
                    waiting = advance.send(None)
                except StopIteration as done:
                    batch.append(done.value)
                    continue
                except StopAsyncIteration:
                    yield batch
                    return
                except BaseException:
                    if batch:
                        yield batch
                    raise
                step = (advance, waiting)
                break
            yield batch
    finally:
        if step is not None:
            await cancel(*step)
