"""The metering wrapper: ledger rows for streams (complete, cancelled, broken), costs, limits."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from execution_platform.errors import RateLimitError, StreamInterruptedError
from execution_platform.model import StreamAccumulator, TextDelta, Usage
from execution_platform.money.budgets import Budget, InProcessBudgets, Reservation
from execution_platform.money.ledger import Ledger
from execution_platform.money.metering import CallContext, MeteredProvider, call_context
from execution_platform.money.pricing import PriceBook
from execution_platform.money.ratelimit import InProcessRateLimiter, RateLimit
from tests.money.conftest import request, scripted_upstream

USAGE = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=200, reasoning_tokens=50)


async def test_streamed_call_row_has_final_usage_and_cost(ledger: Ledger) -> None:
    inner = scripted_upstream(name="openai", usage=USAGE, chunks=["a", "b", "c"])
    metered = MeteredProvider(inner, ledger=ledger)
    acc = StreamAccumulator()
    async for event in metered.stream(request(model="gpt-4o-mini", persona="coder", run_id="run-1")):
        acc.add(event)
    assert acc.response().message.text == "abc"
    [row] = ledger.rows_sync()
    assert row["status"] == "ok" and row["error_type"] is None
    assert (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]) == (
        1200, 300, 200, 50)
    # gpt-4o-mini: 1000 x $0.15 + 200 x $0.075 + 300 x $0.60 per MTok
    assert row["cost_usd"] == pytest.approx((1000 * 0.15 + 200 * 0.075 + 300 * 0.6) / 1e6)
    assert (row["persona"], row["run_id"], row["provider"], row["model"]) == ("coder", "run-1", "openai",
                                                                             "gpt-4o-mini")
    assert row["ttft_ms"] is not None and row["latency_ms"] >= row["ttft_ms"]


async def test_consumer_closing_a_stream_early_writes_a_cancelled_row(ledger: Ledger) -> None:
    inner = scripted_upstream(name="openai", chunks=["word "] * 50, usage=USAGE)
    budgets = InProcessBudgets()
    budget = Budget("key", "k", limit_usd=10.0)
    metered = MeteredProvider(inner, ledger=ledger, budgets=budgets,
                              context=lambda r: CallContext(budgets=[budget]))
    seen = 0
    async with contextlib.aclosing(metered.stream(request(model="gpt-4o-mini", max_tokens=1000))) as events:
        async for event in events:
            seen += isinstance(event, TextDelta)
            if seen == 10:
                break
    assert inner.closed_streams == 1  # the upstream stream was closed too
    [row] = ledger.rows_sync()
    assert row["status"] == "cancelled"
    assert 0 < row["output_tokens"] < USAGE.output_tokens  # tokens so far, not the final usage
    assert row["input_tokens"] > 0 and row["cost_usd"] > 0
    spent, held = await budgets.usage(budget)
    assert held == 0 and spent == pytest.approx(row["cost_usd"])


async def test_cancelled_consumer_task_writes_a_cancelled_row(ledger: Ledger) -> None:
    inner = scripted_upstream(chunks=["x"] * 100, chunk_delay=0.01)
    metered = MeteredProvider(inner, ledger=ledger)

    async def consume() -> None:
        async for _ in metered.stream(request()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = ledger.rows_sync()
    assert row["status"] == "cancelled" and row["output_tokens"] > 0


async def test_stream_broken_after_tokens_is_partial(ledger: Ledger) -> None:
    inner = scripted_upstream(error=StreamInterruptedError("upstream went away"))
    metered = MeteredProvider(inner, ledger=ledger)
    with pytest.raises(StreamInterruptedError):
        async for _ in metered.stream(request()):
            pass
    [row] = ledger.rows_sync()
    assert (row["status"], row["error_type"]) == ("partial", "stream_interrupted")


async def test_provider_reported_cost_wins(ledger: Ledger) -> None:
    metered = MeteredProvider(scripted_upstream(name="claude_agent", cost_usd=0.4242), ledger=ledger)
    response = await metered.chat(request(model="sonnet"))
    assert response.cost_usd == 0.4242
    assert ledger.rows_sync()[0]["cost_usd"] == 0.4242


async def test_rate_limited_call_never_reaches_upstream(ledger: Ledger) -> None:
    inner = scripted_upstream()
    limit = RateLimit("key", "k", rpm=2)
    metered = MeteredProvider(inner, ledger=ledger, limiter=InProcessRateLimiter(), prices=PriceBook())
    ctx = CallContext(limits=[limit])
    with call_context(ctx):
        await metered.chat(request())
        assert ctx.rate_headers.as_headers()["x-ratelimit-remaining-requests"] == "1"
        await metered.chat(request())
        with pytest.raises(RateLimitError):
            await metered.chat(request())
    assert len(inner.calls) == 2
    assert len(ledger.rows_sync()) == 2


async def test_attempts_under_one_context_share_the_request_id(ledger: Ledger) -> None:
    budget = Budget("team", "t", limit_usd=5.0)
    first = MeteredProvider(scripted_upstream(name="a", error=StreamInterruptedError("x")), ledger=ledger,
                            budgets=InProcessBudgets(), context=lambda r: CallContext(budgets=[budget]))
    second = MeteredProvider(scripted_upstream(name="b"), ledger=ledger)
    ctx = CallContext(request_id="req-42")
    with call_context(ctx):
        with pytest.raises(StreamInterruptedError):
            await first.chat(request())
        await second.chat(request())
    rows = ledger.rows_sync()
    assert [(r["request_id"], r["attempt"], r["provider"], r["status"]) for r in rows] == [
        ("req-42", 1, "a", "error"), ("req-42", 2, "b", "ok")]
    assert ctx.attempts == 2 and ctx.status == "ok"


class SlowSettling(InProcessBudgets):
    """A budget backend whose settlement waits (as a Redis round trip does)."""

    async def _settle(self, reservation: Reservation, actual: int) -> list[tuple[int, int]]:
        await asyncio.sleep(0.05)
        return await super()._settle(reservation, actual)


async def test_a_second_cancellation_during_a_settlement_that_waits_loses_neither_it_nor_the_row(
    ledger: Ledger,
) -> None:
    budgets = SlowSettling()
    budget = Budget("key", "k", limit_usd=10.0)
    metered = MeteredProvider(scripted_upstream(delay=10), ledger=ledger, budgets=budgets,
                              context=lambda r: CallContext(budgets=[budget]))
    task = asyncio.create_task(metered.chat(request(model="gpt-4o-mini", max_tokens=100)))
    await asyncio.sleep(0.05)
    task.cancel()  # the upstream wait ends; the attempt's settlement starts and waits
    await asyncio.sleep(0.01)
    task.cancel()  # a second cancellation, while the settlement waits
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):  # the settlement and the commit finish on their own
        if ledger.rows_sync():
            break
        await asyncio.sleep(0.01)
    [row] = ledger.rows_sync()
    assert row["status"] == "cancelled"
    spent, held = await budgets.usage(budget)
    assert held == 0 and spent == pytest.approx(row["cost_usd"])


async def test_an_attempts_row_carries_every_field_by_name(ledger: Ledger) -> None:
    """The row a metered attempt settles (told to ``on_attempt`` and committed) has each value in its
    own field: the metering builds it positionally, so a field order gone wrong shows here."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from execution_platform.money.ledger import LedgerRow, utcnow

    usage = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=200, cache_write_tokens=100,
                  reasoning_tokens=50)
    seen: list[LedgerRow] = []
    payer = CallContext(request_id="req-fields", key_id="key-1", team="team-1", session_id="sess-1",
                        on_attempt=lambda row, started: seen.append(row))
    metered = MeteredProvider(scripted_upstream(name="openai", usage=usage, cost_usd=0.25), ledger=ledger,
                              context=lambda r: CallContext(deployment="dep-1"))
    before = datetime.now(UTC).replace(tzinfo=None)
    with call_context(payer):
        await metered.chat(request(model="gpt-4o-mini", persona="coder", run_id="run-1"))
    after = utcnow()
    [row] = seen
    values = asdict(row)
    latency = values.pop("latency_ms")
    stamp = values.pop("ts")
    assert values == {
        "request_id": "req-fields", "provider": "openai", "model": "gpt-4o-mini", "status": "ok", "attempt": 1,
        "key_id": "key-1", "team": "team-1", "persona": "coder", "run_id": "run-1", "session_id": "sess-1",
        "deployment": "dep-1", "input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 200,
        "cache_write_tokens": 100, "reasoning_tokens": 50, "cost_usd": 0.25, "ttft_ms": None, "error_type": None,
    }
    assert isinstance(latency, float) and latency >= 0
    assert stamp.tzinfo is None and before <= stamp <= after
    [stored] = ledger.rows_sync()
    assert {name: stored[name] for name in values} == values
    assert stored["ts"] == stamp and stored["latency_ms"] == pytest.approx(latency)
