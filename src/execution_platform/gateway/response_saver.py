"""Saving stored responses without costing an fsync per request or blocking the event loop.

Saves that arrive while a write is in flight are committed together in the next transaction (group
commit, as the ledger does), and each caller waits for its own commit, so a non-streamed answer is
durable before it is returned. A stream's save starts in its (synchronous) trailer and is tracked as
pending; reads of that id wait for it first, so a client chaining on a response it just received
always finds it on this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..storage.responses import ResponseStore, StoredResponse

log = logging.getLogger("execution_platform.gateway")


class ResponseSaver:
    def __init__(self, store: ResponseStore) -> None:
        self.store = store
        self._queue: list[tuple[StoredResponse, asyncio.Future[None]]] = []
        self._writing = False
        self._pending: dict[str, asyncio.Future[None]] = {}

    async def save(self, item: StoredResponse) -> None:
        """Commit ``item`` (batched with concurrent saves); returns once it is durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().create_task(self._drain())
        await future

    def save_soon(self, item: StoredResponse) -> None:
        """Start saving from synchronous code; :meth:`settle` waits for it."""
        task = asyncio.ensure_future(self.save(item))
        self._pending[item.id] = task

        def done(finished: asyncio.Future[None], response_id: str = item.id) -> None:
            self._pending.pop(response_id, None)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("could not store response %s: %s", response_id, type(finished.exception()).__name__)

        task.add_done_callback(done)

    async def settle(self, response_id: str) -> None:
        """Wait for a save of ``response_id`` still in flight (read-your-writes)."""
        pending = self._pending.get(response_id)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await asyncio.to_thread(self.store.put_many, [item for item, _ in batch])
                except Exception as exc:  # each waiting request sees the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writing = False
