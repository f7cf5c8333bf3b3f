"""Stored responses: concurrent saves share one commit, each waits for its own, reads wait for pending ones."""

from __future__ import annotations

import asyncio
import threading

import pytest

from execution_platform.gateway.response_saver import ResponseSaver
from execution_platform.storage.responses import MemoryResponseStore, StoredResponse


class SlowStore(MemoryResponseStore):
    """Counts transactions; each takes a while, so saves arriving meanwhile queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.gate = threading.Event()

    def put_many(self, items: list[StoredResponse]) -> None:
        self.gate.wait(5)
        self.batches.append(len(items))
        super().put_many(items)


def item(n: int, key: str | None = "k1") -> StoredResponse:
    return StoredResponse(id=f"resp_{n}", key_id=key, model="m", conversation=[], response={"id": f"resp_{n}"})


async def test_concurrent_saves_share_a_commit_and_each_waits_for_its_own() -> None:
    store = SlowStore()
    saver = ResponseSaver(store)
    saves = [asyncio.ensure_future(saver.save(item(n))) for n in range(10)]
    await asyncio.sleep(0.05)
    assert not any(s.done() for s in saves)  # nobody returns before the commit
    store.gate.set()
    await asyncio.gather(*saves)
    assert sum(store.batches) == 10 and len(store.batches) <= 2
    assert all(store.get(f"resp_{n}", "k1") is not None for n in range(10))


async def test_a_read_waits_for_a_pending_save() -> None:
    store = SlowStore()
    saver = ResponseSaver(store)
    saver.save_soon(item(1))
    settle = asyncio.ensure_future(saver.settle("resp_1"))
    await asyncio.sleep(0.05)
    assert not settle.done()
    store.gate.set()
    await settle
    assert store.get("resp_1", "k1") is not None


async def test_a_failed_commit_reaches_every_waiting_save() -> None:
    class Broken(MemoryResponseStore):
        def put_many(self, items: list[StoredResponse]) -> None:
            raise RuntimeError("disk full")

    saver = ResponseSaver(Broken())
    results = await asyncio.gather(saver.save(item(1)), saver.save(item(2)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


def test_memory_store_is_scoped_to_the_key() -> None:
    store = MemoryResponseStore()
    store.put(item(1, "k1"))
    assert store.get("resp_1", "k2") is None and not store.delete("resp_1", "k2")
    assert store.get("resp_1", "k1") is not None and store.delete("resp_1", "k1")
    with pytest.raises(KeyError):
        store._items["resp_1"]
