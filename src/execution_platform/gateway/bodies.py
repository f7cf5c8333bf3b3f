"""The request body as the gateway receives it: a stalled body times out, a vanished client is noticed.

uvicorn waits for the rest of a body as long as the client keeps the socket open, so a client that
sends half a body and stops holds a task and a connection forever. Each read of the body gets
``body_timeout`` seconds; when it passes the request ends with 408 and the connection is closed.
Once the body is complete the reads are no longer timed: a streaming response waits on ``receive``
for the client's disconnect for as long as the stream lasts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException

from ..errors import InvalidRequestError
from .coroutines import resume


class BodyTimeout(HTTPException):
    """Raised from ``receive``; an ``HTTPException`` so FastAPI's own body parsing lets it through."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body stalled: no data for {seconds:g} s", headers={"connection": "close"})
        self.seconds = seconds

    def as_error(self) -> InvalidRequestError:
        err = InvalidRequestError(str(self.detail), code="request_timeout")
        err.status_code = 408  # type: ignore[misc]
        return err


class BodyReader:
    """Wraps an ASGI ``receive``: a per-read timeout while the body is incomplete, and disconnect tracking."""

    __slots__ = ("_receive", "_timeout", "complete", "disconnected")

    def __init__(self, receive: Any, timeout: float | None) -> None:
        self._receive = receive
        self._timeout = timeout
        self.complete = False
        self.disconnected = False

    async def __call__(self) -> dict[str, Any]:
        if self.complete or self._timeout is None:
            message = await self._receive()
        else:
            # Started by hand: a body already received (the usual case) is returned without arming
            # a timer at all; only a read that must wait runs under the deadline.
            reading = self._receive()
            step = getattr(reading, "send", None)  # a coroutine (uvicorn's, starlette's); else awaited as is
            try:
                waiting = step(None) if step is not None else None
            except StopIteration as done:
                message = done.value
            else:
                try:
                    async with asyncio.timeout(self._timeout):
                        message = await (resume(reading, waiting) if step is not None else reading)
                except TimeoutError:
                    raise BodyTimeout(self._timeout) from None
        kind = message["type"]
        if kind == "http.disconnect":
            self.disconnected = True
            self.complete = True
        elif kind == "http.request" and not message.get("more_body", False):
            self.complete = True
        return message
