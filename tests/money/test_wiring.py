"""Money wired into the SDK ``Client``: per-request limits, per-attempt budgets and rows, deployment limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from execution_platform.client import Client
from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.errors import BudgetExceededError, RateLimitError
from execution_platform.money.metering import CallContext, call_context
from execution_platform.money.ratelimit import RateLimit
from tests.fakes.script import Fault, Reply

CONFIG = """
pricing:
  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}
  openai/gpt-4o: {input_per_mtok: 2000, output_per_mtok: 2000}
deployments:
  - {name: small, provider: openai, model: gpt-4o-mini, limits: {rpm: 1}}
  - {name: large, provider: openai, model: gpt-4o}
personas:
  writer:
    targets: [small, large]
    budget: {usd: 0.1, period: week}
    limits: {rpm: 4}
  solo:
    targets: [large]
    limits: {max_concurrent: 1}
"""
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["inprocess", "redis"])
async def client(fake_openai: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = Settings(_env_file=None, openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.base_url,
                        database_url=f"sqlite:///{tmp_path / 'ep.db'}", redis_url=redis_url)
    async with Client(settings, config=parse_config(CONFIG), meter=True) as c:
        yield c


async def test_deployment_limit_moves_the_persona_to_its_next_target(client: Any, fake_openai: Any) -> None:
    first = await client.chat(model="persona:writer", messages=HI, max_tokens=10)
    second = await client.chat(model="persona:writer", messages=HI, max_tokens=10)
    assert first.cost_usd == pytest.approx(0.019)
    assert second.cost_usd == pytest.approx(0.038)  # served by 'large' at its own prices
    assert [a.status for a in second.attempts] == ["skipped", "ok"]  # 'small' refused locally, not called
    assert len(fake_openai.requests) == 2
    assert client.router.breaker("small").state == "closed"  # our own 429 is not an upstream failure
    rows = client.meter.ledger.rows_sync()
    assert [(r["deployment"], r["attempt"], r["persona"]) for r in rows] == [
        ("small", 1, "writer"), ("large", 2, "writer")]


async def test_persona_budget_refuses_before_the_upstream_and_rpm_counts_requests(
    client: Any, fake_openai: Any
) -> None:
    writer = {"persona": "writer"}
    fake_openai.enqueue(Fault(kind="status", status=500), Reply())
    answer = await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, metadata=writer)
    assert len(fake_openai.requests) == 2 and answer.cost_usd == pytest.approx(0.019)  # one retry
    for _ in range(2):
        await client.chat(model="openai/gpt-4o", messages=HI, max_tokens=10, metadata=writer)  # $0.038 each
    rows = client.meter.ledger.rows_sync()
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(0.095)  # $0.005 left of $0.1 this week
    calls = len(fake_openai.requests)
    ctx = CallContext(request_limits=[RateLimit("key", "k", rpm=100)])
    # 4th request of the persona's 4 a minute (the retry counted once): refused for money, not for rate
    with call_context(ctx), pytest.raises(BudgetExceededError):
        await client.chat(model="persona:writer", messages=HI, max_tokens=10)
    assert len(fake_openai.requests) == calls  # no upstream call
    assert ctx.rate_headers.remaining_requests == 0  # the persona's limit is the tightest: 4 of 4 used
    # ... but a request refused for money gives its slot back: the next one is refused for money again
    with pytest.raises(BudgetExceededError):
        await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10, metadata=writer)
    assert len(client.meter.ledger.rows_sync()) == len(rows)


async def test_stream_rows_and_caller_context_outcome(client: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Reply(text="abc", input_tokens=30, output_tokens=3))
    ctx = CallContext(request_id="req-stream-1", key_id="key-1")
    with call_context(ctx):
        stream = client.send_stream(client.build_request("openai/gpt-4o-mini", HI))
    async for _ in stream:  # consumed outside the block, as a server does from another task
        pass
    [row] = client.meter.ledger.rows_sync()
    assert (row["request_id"], row["key_id"], row["input_tokens"], row["output_tokens"]) == (
        "req-stream-1", "key-1", 30, 3)
    assert row["cost_usd"] == pytest.approx(0.033) and ctx.cost_usd == pytest.approx(0.033)
    assert ctx.tokens == 33


async def test_budget_refusal_does_not_use_up_the_key_rpm(client: Any, fake_openai: Any) -> None:
    ctx = lambda: CallContext(request_limits=[RateLimit("key", "k2", rpm=2)])  # noqa: E731
    with call_context(ctx()):
        await client.chat(model="persona:writer", messages=HI, max_tokens=10)  # 1st of 2; $0.019
    for _ in range(3):  # the persona's $0.1 cannot hold a worst case of 5000 tokens at $0.001
        with call_context(ctx()), pytest.raises(BudgetExceededError):
            await client.chat(model="persona:writer", messages=HI, max_tokens=5000)
    with call_context(ctx()):
        await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10)  # 2nd of 2
    with call_context(ctx()), pytest.raises(RateLimitError):
        await client.chat(model="openai/gpt-4o-mini", messages=HI, max_tokens=10)
    assert len(fake_openai.requests) == 2


async def test_max_concurrent_refuses_a_request_over_the_cap_until_one_ends(client: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Fault(kind="slow_first_byte", delay=0.5, then=Reply()))
    running = asyncio.create_task(client.chat(model="persona:solo", messages=HI, max_tokens=10))
    while not fake_openai.requests:
        await asyncio.sleep(0.01)
    with pytest.raises(RateLimitError) as refused:
        await client.chat(model="persona:solo", messages=HI, max_tokens=10)
    assert refused.value.response_headers()["retry-after"] == "1"  # type: ignore[attr-defined]
    assert len(fake_openai.requests) == 1  # refused before any upstream call
    await running
    stream = client.send_stream(client.build_request("persona:solo", HI, max_tokens=10))
    events = [event async for event in stream]  # the slot is free again, and freed by a stream too
    assert events and (await client.chat(model="persona:solo", messages=HI, max_tokens=10)).cost_usd
