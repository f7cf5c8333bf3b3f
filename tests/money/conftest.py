"""Fixtures for the money tests: a scripted inner provider, a migrated SQLite ledger, private servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from sqlalchemy.engine import Engine

from execution_platform.errors import EPError
from execution_platform.model import ChatRequest, Message, Usage
from execution_platform.money.ledger import Ledger
from execution_platform.storage import create_engine_from_url, migrate
from tests.fakes.scripted import Answer, Fail, ScriptedProvider
from tests.servers import PostgresServer, RedisServer, postgres_server, redis_server


def scripted_upstream(
    name: str = "scripted",
    *,
    usage: Usage | None = None,
    delay: float = 0.0,
    chunks: list[str] | None = None,
    error: EPError | None = None,
    cost_usd: float | None = None,
    chunk_delay: float = 0.0,
) -> ScriptedProvider:
    """The money tests' upstream: every call answers "hello" in two chunks for 5 + 5 tokens (exact costs),
    or fails with ``error`` (a stream after those chunks, before its usage)."""
    answer = Answer(chunks=chunks or ["hel", "lo"], usage=usage or Usage(input_tokens=5, output_tokens=5),
                    delay=delay, chunk_delay=chunk_delay, cost_usd=cost_usd)
    if error is None:
        return ScriptedProvider(name, default=answer)
    return ScriptedProvider(name, default=Fail(error, after_events=1 + len(answer.deltas), delay=delay, partial=answer))


def request(text: str = "hi", *, model: str = "m", max_tokens: int | None = 10, **meta: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message(role="user", content=text)],
        max_tokens=max_tokens,
        metadata=meta,
    )


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ep.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = create_engine_from_url(sqlite_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
async def ledger(engine: Engine) -> AsyncIterator[Ledger]:
    async with Ledger(engine) as led:
        yield led


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_srv: RedisServer) -> str:
    """The private server, emptied for this test (sync, so async fixtures can request it lazily)."""
    with redis.Redis.from_url(redis_srv.url) as client:
        client.flushdb()
    return redis_srv.url


@pytest.fixture(scope="session")
def pg_srv() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server
