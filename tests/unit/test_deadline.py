"""``Deadline`` behaves as ``asyncio.timeout`` for the reads it bounds."""

from __future__ import annotations

import asyncio

import pytest

from execution_platform.providers.http import Deadline


async def test_a_read_that_takes_too_long_raises_timeout_error() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    with pytest.raises(TimeoutError):
        async with Deadline(loop, 0.01):
            await never
    assert never.cancelled()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # its own cancellation was taken back


async def test_a_read_in_time_returns_and_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    async with Deadline(loop, 0.5):  # a stall of the whole process under 0.5 s cannot time this out
        await asyncio.sleep(0)
    await asyncio.sleep(0.6)  # a timer left armed would cancel this task here


@pytest.mark.parametrize("form", ["async with", "with"])
async def test_a_cancellation_from_outside_stays_a_cancellation(form: str) -> None:
    """Either form of entering the deadline leaves a cancellation from outside a cancellation."""
    loop = asyncio.get_running_loop()

    async def read() -> None:
        if form == "with":
            with Deadline(loop, 10):
                await asyncio.sleep(10)
        else:
            async with Deadline(loop, 10):
                await asyncio.sleep(10)

    task = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_reschedule_moves_the_deadline_later_and_earlier() -> None:
    loop = asyncio.get_running_loop()
    async with Deadline(loop, 0.02) as deadline:
        deadline.reschedule(10)
        await asyncio.sleep(0.1)  # past the first deadline: moved, so no timeout
    never: asyncio.Future[None] = loop.create_future()
    with pytest.raises(TimeoutError):
        async with Deadline(loop, 10) as deadline:
            deadline.reschedule(0.01)
            await never
    await asyncio.sleep(0.05)  # the first timer was disarmed: nothing cancels this task later


async def test_the_plain_with_form_times_out_the_same() -> None:
    """``with Deadline(...)`` (no coroutine to enter or leave it) bounds an await inside it the same way."""
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    with pytest.raises(TimeoutError):
        with Deadline(loop, 0.01):
            await never
    assert never.cancelled()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    with Deadline(loop, 0.5) as deadline:
        deadline.reschedule(0.5)
        await asyncio.sleep(0)
    await asyncio.sleep(0.6)  # no timer left armed
