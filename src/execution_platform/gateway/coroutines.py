"""Coroutines driven by hand: started with ``send(None)``, finished inline when they never suspend.

Two hot spots use this: the stream pump takes every event an upstream read produced without a task
switch (``streaming._ready_batches``), and a body read arms its timeout only if the read must wait
(``bodies.BodyReader``). What started by hand and did suspend is finished here, as a task would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def resume(coro: Any, waiting: Any) -> Any:
    """Drive a suspended coroutine (an ``__anext__``, a ``receive``) to its end the way a task would,
    passing a cancellation of the task into it."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False  # taken over from the coroutine, as a task does
                await waiting
        except asyncio.CancelledError:
            if waiting is None or not waiting.cancelled():
                try:
                    waiting = coro.throw(asyncio.CancelledError())
                except StopIteration as done:
                    return done.value
                continue
        except BaseException:
            pass  # the coroutine reads the future's outcome itself when resumed
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            return done.value


async def cancel(coro: Any, waiting: Any) -> None:
    """Cancel a suspended coroutine (an ``__anext__``: its generator runs its cleanup, closing the upstream)."""
    with contextlib.suppress(BaseException):
        waiting = coro.throw(asyncio.CancelledError())
        await resume(coro, waiting)
