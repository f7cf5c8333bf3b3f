"""The shared upstream pool closes on the loop that owns it, and only there."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from execution_platform.providers import http


@pytest.fixture
def fresh_shared_pool(monkeypatch: pytest.MonkeyPatch) -> http.HttpClient:
    """A process-wide pool of its own, so the test never closes the one other tests share."""
    monkeypatch.setattr(http, "_shared", None)
    return http.shared_client()


async def test_close_shared_pool_closes_the_session_of_this_loop(fresh_shared_pool: http.HttpClient) -> None:
    session = fresh_shared_pool.session()
    await http.close_shared_pool()
    assert session.closed
    reopened = fresh_shared_pool.session()  # the next call on this loop gets a working session
    assert not reopened.closed
    await fresh_shared_pool.aclose()


def _on_loop(loop: asyncio.AbstractEventLoop, work: Callable[[], Awaitable[object]]) -> object:
    """Run ``work`` to completion on ``loop`` in a thread of its own (this thread's loop is busy)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(loop.run_until_complete(work())))
    thread.start()
    thread.join()
    return result[0]


async def test_close_shared_pool_leaves_a_pool_of_another_loop_alone(fresh_shared_pool: http.HttpClient) -> None:
    other = asyncio.new_event_loop()

    async def open_session() -> aiohttp.ClientSession:
        return fresh_shared_pool.session()

    session = _on_loop(other, open_session)
    assert isinstance(session, aiohttp.ClientSession)
    await http.close_shared_pool()
    assert not session.closed
    _on_loop(other, fresh_shared_pool.aclose)
    other.close()
    assert session.closed


async def test_close_shared_pool_without_a_pool_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_shared", None)
    await http.close_shared_pool()
    assert http._shared is None
