"""Stored Responses API results, scoped to the key that created them.

A row keeps two things: the wire ``response`` object (what ``GET /v1/responses/{id}`` returns) and the
canonical ``conversation`` up to and including that response's answer (what ``previous_response_id``
continues). Rows of another key are invisible: lookups filter on the key, so a foreign id reads exactly
like an unknown one. Methods are synchronous single statements; async callers use a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .tables import responses


@dataclass
class StoredResponse:
    id: str
    key_id: str | None
    model: str
    conversation: list[dict[str, Any]]
    response: dict[str, Any]


class ResponseStore(Protocol):
    def put(self, item: StoredResponse) -> None: ...

    def put_many(self, items: list[StoredResponse]) -> None: ...

    def get(self, response_id: str, key_id: str | None) -> StoredResponse | None: ...

    def delete(self, response_id: str, key_id: str | None) -> bool: ...


def _owned(key_id: str | None) -> Any:
    column = responses.c.key_id
    return column.is_(None) if key_id is None else column == key_id


class SQLResponseStore:
    """The ``responses`` table on the ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, item: StoredResponse) -> None:
        self.put_many([item])

    def put_many(self, items: list[StoredResponse]) -> None:
        """One transaction (one fsync) for a whole batch: concurrent saves share the commit."""
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [{"id": i.id, "key_id": i.key_id, "created_at": now, "model": i.model, "conversation": i.conversation,
                 "response": i.response} for i in items]
        with self.engine.begin() as conn:
            conn.execute(responses.insert(), rows)

    def get(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        query = sa.select(responses).where(responses.c.id == response_id, _owned(key_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredResponse(id=row.id, key_id=row.key_id, model=row.model, conversation=row.conversation,
                              response=row.response)

    def delete(self, response_id: str, key_id: str | None) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(responses.delete().where(responses.c.id == response_id, _owned(key_id)))
        return result.rowcount > 0


class MemoryResponseStore:
    """Process-local store for gateways running without a database (stand-in clients, tests)."""

    def __init__(self) -> None:
        self._items: dict[str, StoredResponse] = {}

    def put(self, item: StoredResponse) -> None:
        self._items[item.id] = item

    def put_many(self, items: list[StoredResponse]) -> None:
        for item in items:
            self.put(item)

    def get(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        item = self._items.get(response_id)
        return item if item is not None and item.key_id == key_id else None

    def delete(self, response_id: str, key_id: str | None) -> bool:
        if self.get(response_id, key_id) is None:
            return False
        del self._items[response_id]
        return True
