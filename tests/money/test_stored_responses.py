"""The ``responses`` table (migration ``0003_responses``) on SQLite and a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from execution_platform.storage.responses import SQLResponseStore, StoredResponse
from tests.money.test_storage import pg_engine  # noqa: F401  (fixture)


def item(n: int, key: str | None) -> StoredResponse:
    conversation = [{"role": "user", "content": [{"type": "text", "text": f"q{n}"}]}]
    return StoredResponse(id=f"resp_{n}", key_id=key, model="gpt-4.1", conversation=conversation,
                          response={"id": f"resp_{n}", "object": "response", "output": []})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_stored_responses_are_scoped_to_their_key(backend: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    store = SQLResponseStore(engine)
    store.put_many([item(1, "key_a"), item(2, None)])
    found = store.get("resp_1", "key_a")
    assert found is not None and found.conversation == item(1, "key_a").conversation
    assert found.response["object"] == "response"
    assert store.get("resp_1", "key_b") is None and store.get("resp_1", None) is None
    assert store.get("resp_2", None) is not None and store.get("resp_2", "key_a") is None
    assert not store.delete("resp_1", "key_b")
    assert store.delete("resp_1", "key_a") and store.get("resp_1", "key_a") is None
