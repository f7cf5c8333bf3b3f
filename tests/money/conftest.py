"""Fixtures for the money tests: a scripted inner provider, a migrated SQLite ledger, private servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from sqlalchemy.engine import Engine

from execution_platform.errors import EPError
from execution_platform.model import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    StartEvent,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
)
from execution_platform.money.ledger import Ledger
from execution_platform.providers.base import Provider
from execution_platform.storage import create_engine_from_url, migrate
from tests.servers import PostgresServer, RedisServer, postgres_server, redis_server


class ScriptedProvider(Provider):
    """An upstream stand-in: answers with fixed usage, optionally slowly or with an error."""

    def __init__(
        self,
        *,
        name: str = "scripted",
        usage: Usage | None = None,
        delay: float = 0.0,
        chunks: list[str] | None = None,
        error: EPError | None = None,
        cost_usd: float | None = None,
        chunk_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.usage = usage or Usage(input_tokens=5, output_tokens=5)
        self.delay = delay
        self.chunks = chunks or ["hel", "lo"]
        self.error = error
        self.cost_usd = cost_usd
        self.chunk_delay = chunk_delay
        self.calls = 0
        self.closed_streams = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return ChatResponse(
            id="r1",
            model=request.model,
            message=Message(role="assistant", content="".join(self.chunks)),
            usage=self.usage,
            provider=self.name,
            cost_usd=self.cost_usd,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay)
            yield StartEvent(id="r1", model=request.model, provider=self.name)
            for chunk in self.chunks:
                await asyncio.sleep(self.chunk_delay)
                yield TextDelta(text=chunk)
            if self.error is not None:
                raise self.error
            yield UsageEvent(usage=self.usage)
            yield FinishEvent(reason="stop")
        finally:
            self.closed_streams += 1


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
