"""Events already available are written together; nothing waits for more; cancelling still closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from execution_platform.gateway.streaming import _ready_batches


def test_events_from_one_read_form_one_batch_and_none_waits_for_more() -> None:
    async def events() -> AsyncIterator[str]:
        yield "a"
        yield "b"  # same "read": no suspension between a and b
        await asyncio.sleep(0.01)
        yield "c"
        await asyncio.sleep(0)
        yield "d"
        yield "e"

    async def run() -> list[list[str]]:
        return [batch async for batch in _ready_batches(events())]

    assert asyncio.run(run()) == [["a", "b"], ["c"], ["d", "e"]]


def test_upstream_error_after_ready_events_delivers_them_first() -> None:
    async def events() -> AsyncIterator[str]:
        yield "a"
        raise ValueError("upstream broke")

    async def run() -> tuple[list[list[str]], str]:
        seen: list[list[str]] = []
        try:
            async for batch in _ready_batches(events()):
                seen.append(batch)
        except ValueError as exc:
            return seen, str(exc)
        return seen, ""

    assert asyncio.run(run()) == ([["a"]], "upstream broke")


def test_cancelling_the_consumer_runs_the_generators_cleanup_at_once() -> None:
    async def run() -> bool:
        done = asyncio.Event()

        async def events() -> AsyncIterator[str]:
            try:
                yield "a"
                await asyncio.sleep(10)
                yield "never"
            finally:
                done.set()

        async def consume() -> None:
            batches = _ready_batches(events())
            try:
                async for _ in batches:
                    await asyncio.sleep(10)  # the client write that gets cancelled
            finally:
                await batches.aclose()

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return done.is_set()

    assert asyncio.run(run()) is True


def test_cancelling_while_waiting_for_the_next_event_reaches_the_generator() -> None:
    async def run() -> list[str]:
        seen: list[str] = []

        async def events() -> AsyncIterator[str]:
            yield "a"
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            yield "never"

        async def consume() -> None:
            async for batch in _ready_batches(events()):
                seen.extend(batch)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    assert asyncio.run(run()) == ["a", "cancelled"]
