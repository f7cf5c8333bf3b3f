"""The payer travels explicitly: ``Client.send(request, payer=...)`` meters under that payer with no
context variable set, and the rate-limit headers of the request come back on the answer or the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from execution_platform.client import Client, SyncClient
from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.errors import BudgetExceededError
from execution_platform.money.budgets import Budget
from execution_platform.money.metering import CallContext, current_context
from execution_platform.money.ratelimit import RateLimit
from execution_platform.routing import attempts_of
from tests.fakes.script import Fault, Reply

CONFIG = """
pricing:
  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}
"""
HI = [{"role": "user", "content": "hi"}]


def _settings(fake_openai: Any, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.base_url,
                    database_url=f"sqlite:///{tmp_path / 'ep.db'}")


@pytest.fixture
async def client(fake_openai: Any, tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(_settings(fake_openai, tmp_path), config=parse_config(CONFIG), meter=True) as c:
        yield c


def _payer(key: str, *, budget_usd: float = 1.0, rpm: int | None = None) -> CallContext:
    return CallContext(
        request_id=f"req-{key}",
        key_id=key,
        team="research",
        budgets=[Budget("key", key, limit_usd=budget_usd)],
        request_limits=[RateLimit("key", key, rpm=rpm)] if rpm else [],
    )


async def test_an_explicit_payer_is_charged_and_limited_without_a_context_variable(
    client: Client, fake_openai: Any
) -> None:
    assert current_context() is None
    payer = _payer("k-paid")
    answer = await client.send(client.build_request("openai/gpt-4o-mini", HI, max_tokens=10), payer=payer)
    assert current_context() is None  # nothing was left behind for the caller either
    assert answer.cost_usd == pytest.approx(0.019) and payer.cost_usd == pytest.approx(0.019)
    assert client.meter is not None and client.meter.ledger is not None
    [row] = client.meter.ledger.rows_sync()
    assert (row["request_id"], row["key_id"], row["team"]) == ("req-k-paid", "k-paid", "research")
    calls = len(fake_openai.requests)
    broke = _payer("k-broke", budget_usd=0.001)  # cannot hold the worst case of one call
    with pytest.raises(BudgetExceededError):
        await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, payer=broke)
    assert len(fake_openai.requests) == calls  # refused before the upstream
    assert len(client.meter.ledger.rows_sync()) == 1


async def test_the_answer_carries_the_rate_limit_headers_of_the_request(client: Client) -> None:
    answer = await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, payer=_payer("k", rpm=5))
    assert answer.rate_limits["x-ratelimit-limit-requests"] == "5"
    assert answer.rate_limits["x-ratelimit-remaining-requests"] == "4"
    assert "rate_limits" not in answer.model_dump()  # never on the wire
    unlimited = await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10)
    assert unlimited.rate_limits == {}


async def test_a_stream_exposes_its_rate_limit_headers_before_the_first_event(client: Client, fake_openai: Any) -> None:
    fake_openai.enqueue(Fault(kind="slow_first_byte", delay=0.5, then=Reply(text="late")))
    payer = _payer("k-stream", rpm=3)
    stream = client.send_stream(client.build_request("openai/gpt-4o-mini", HI, max_tokens=10), payer=payer)
    first = asyncio.ensure_future(stream.__anext__())
    while not fake_openai.requests:  # admitted and waiting for the upstream's first byte
        await asyncio.sleep(0.01)
    assert not first.done()
    assert stream.rate_limits["x-ratelimit-remaining-requests"] == "2"
    events = [await first, *[event async for event in stream]]
    assert events and attempts_of(stream)
    assert client.meter is not None and client.meter.ledger is not None
    [row] = client.meter.ledger.rows_sync()
    assert (row["request_id"], row["key_id"]) == ("req-k-stream", "k-stream")


def test_the_sync_client_takes_a_payer(fake_openai: Any, tmp_path: Path) -> None:
    fake_openai.enqueue(Reply(text="one"), Reply(text="two"))
    payer = _payer("k-sync", rpm=9)
    with SyncClient(_settings(fake_openai, tmp_path), config=parse_config(CONFIG), meter=True) as client:
        answer = client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, payer=payer)
        events = list(client.stream(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, payer=payer))
    assert answer.rate_limits["x-ratelimit-remaining-requests"] == "8" and events
    assert payer.attempts == 2 and payer.key_id == "k-sync"
