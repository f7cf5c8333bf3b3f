"""Hard budgets hold at any concurrency, reservations never leak, soft thresholds notify once.

Prices are overridden so the numbers are exact: $0.001 per token. A request "hi" with max_tokens=10
has a worst case of (8 + 2 + 10) tokens = $0.02 and, as the scripted upstream reports 5 + 5 tokens,
actually costs $0.01; a $1 budget is worth ~100 calls.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from execution_platform.errors import BudgetExceededError, UpstreamServerError
from execution_platform.money.backends import connect_redis
from execution_platform.money.budgets import Budget, BudgetBackend, InProcessBudgets, RedisBudgets
from execution_platform.money.ledger import Ledger
from execution_platform.money.metering import CallContext, MeteredProvider, call_context
from execution_platform.money.pricing import PriceBook
from tests.fakes.scripted import ScriptedProvider
from tests.money.conftest import request, scripted_upstream

PRICES = PriceBook({"m": {"input_per_mtok": 1000, "output_per_mtok": 1000}})
WORST, ACTUAL = 0.02, 0.01


@pytest.fixture(params=["inprocess", "redis"])
async def backends(request: pytest.FixtureRequest, ledger: Ledger) -> AsyncIterator[list[BudgetBackend]]:
    """Three backends (replicas) sharing state: one in-process backend three times, or three Redis clients."""
    if request.param == "inprocess":
        shared = InProcessBudgets(spent_loader=ledger.spent)
        yield [shared, shared, shared]
        return
    url = request.getfixturevalue("redis_url")
    clients = [connect_redis(url) for _ in range(3)]
    made = [RedisBudgets(c, spent_loader=ledger.spent) for c in clients]
    yield made
    for backend, c in zip(made, clients, strict=True):
        await backend.aclose()
        await c.aclose()


def _metered(inner: ScriptedProvider, ledger: Ledger, backend: BudgetBackend, budget: Budget) -> MeteredProvider:
    return MeteredProvider(inner, ledger=ledger, prices=PRICES, budgets=backend,
                           context=lambda req: CallContext(budgets=[budget]))


async def test_hard_budget_never_overspent_and_no_reservation_leaks(
    backends: list[BudgetBackend], ledger: Ledger
) -> None:
    budget = Budget("key", "k1", limit_usd=1.0, period="day")
    inner = scripted_upstream(delay=0.05)
    replicas = [_metered(inner, ledger, b, budget) for b in backends]
    rr = itertools.cycle(replicas)

    async def one() -> bool:
        try:
            await next(rr).chat(request(key_id="k1"))
        except BudgetExceededError:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(500)))
    admitted = sum(results)
    assert len(inner.calls) == admitted  # rejected calls never reached the upstream
    assert 0 < admitted < 500
    spent = (await ledger.costs())["total_usd"]
    assert spent <= budget.limit_usd
    assert (await ledger.costs())["requests"] == admitted

    # One by one, calls keep being admitted until less than one worst case remains.
    while True:
        try:
            await next(rr).chat(request(key_id="k1"))
        except BudgetExceededError:
            break
    spent = (await ledger.costs())["total_usd"]
    assert spent <= budget.limit_usd
    assert budget.limit_usd - spent < WORST
    assert spent == pytest.approx(0.99)  # every cent that could be used was: nothing stayed held
    assert (await backends[0].usage(budget)) == (pytest.approx(0.99), 0.0)


async def test_every_terminal_path_releases(backends: list[BudgetBackend], ledger: Ledger) -> None:
    budget = Budget("persona", "p", limit_usd=WORST)  # room for exactly one call at a time
    backend = backends[0]
    failing = _metered(scripted_upstream(error=UpstreamServerError("boom")), ledger, backend, budget)
    for _ in range(3):
        with pytest.raises(UpstreamServerError):
            await failing.chat(request())
    slow = _metered(scripted_upstream(delay=10), ledger, backend, budget)
    task = asyncio.create_task(slow.chat(request()))
    await asyncio.sleep(0.05)
    assert (await backend.usage(budget))[1] == pytest.approx(WORST)  # held while in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await slow.chat(request())
    assert await backend.usage(budget) == (0.0, 0.0)
    ok = _metered(scripted_upstream(), ledger, backend, budget)
    await ok.chat(request())
    rows = ledger.rows_sync()
    assert [r["status"] for r in rows] == ["error"] * 3 + ["cancelled", "cancelled", "ok"]
    assert rows[0]["error_type"] == "upstream_error"


async def test_expired_hold_of_a_crashed_caller_frees_the_budget(backends: list[BudgetBackend]) -> None:
    budget = Budget("team", "t", limit_usd=1.0)
    backend = type(backends[0]).__new__(type(backends[0]))
    backend.__dict__.update(backends[0].__dict__)
    backend.ttl = 0.2  # this "process" dies holding its reservation...
    if isinstance(backend, RedisBudgets):
        backend._live, backend._renewer = {}, None
    await backend.reserve([budget], 1.0)
    await backend.aclose()  # ...and stops renewing it
    with pytest.raises(BudgetExceededError):
        await backends[1].reserve([budget], 0.5)
    await asyncio.sleep(0.3)
    held = await backends[1].reserve([budget], 0.5)
    await backends[1].settle(held, 0.5)
    assert await backends[1].usage(budget) == (0.5, 0.0)


async def test_a_live_redis_hold_is_renewed_past_its_ttl(redis_url: str) -> None:
    client = connect_redis(redis_url)
    owner, other = RedisBudgets(client, ttl=0.3), RedisBudgets(client, ttl=0.3)
    budget = Budget("key", "long-call", limit_usd=1.0)
    try:
        held = await owner.reserve([budget], 1.0)
        await asyncio.sleep(0.8)  # a long call: its hold would have expired twice without renewal
        with pytest.raises(BudgetExceededError):
            await other.reserve([budget], 0.5)
        await owner.settle(held, 0.25)
        assert await other.usage(budget) == (0.25, 0.0)
    finally:
        await owner.aclose()
        await other.aclose()
        await client.aclose()


async def test_all_budgets_or_none(backends: list[BudgetBackend]) -> None:
    roomy, tight = Budget("key", "k", limit_usd=10.0), Budget("team", "t", limit_usd=1.0)
    backend = backends[0]
    with pytest.raises(BudgetExceededError, match="team 't'"):
        await backend.reserve([roomy, tight], 2.0)
    assert await backend.usage(roomy) == (0.0, 0.0)  # nothing held on the budget that had room


async def test_spent_so_far_is_loaded_from_the_ledger(ledger: Ledger, backends: list[BudgetBackend]) -> None:
    budget = Budget("key", "k9", limit_usd=1.0, period="month")
    inner = scripted_upstream()
    first = _metered(inner, ledger, backends[0], budget)
    for _ in range(30):
        await first.chat(request(key_id="k9"))
    # A restarted process (fresh in-process counters / flushed Redis) starts from the ledger's $0.30.
    fresh: BudgetBackend
    if isinstance(backends[0], RedisBudgets):
        await backends[0].redis.flushdb()
        fresh = backends[1]
    else:
        fresh = InProcessBudgets(spent_loader=ledger.spent)
    with pytest.raises(BudgetExceededError):
        await fresh.reserve([budget], 0.71)
    held = await fresh.reserve([budget], 0.70)
    await fresh.release(held)
    assert (await fresh.usage(budget))[0] == pytest.approx(0.30)


async def test_soft_budget_notifies_once_and_never_rejects(backends: list[BudgetBackend], ledger: Ledger) -> None:
    soft = Budget("persona", "writer", limit_usd=0.05, hard=False, thresholds=(0.8, 1.0))
    backend = backends[0]
    metered = _metered(scripted_upstream(), ledger, backend, soft)
    for _ in range(10):  # $0.10: twice the soft limit, never rejected
        await metered.chat(request())
    events = [e for e in backend.notifier.events if e["name"] == "writer"]
    assert [e["threshold"] for e in events] == [0.8, 1.0]


async def test_call_context_scope_adds_budgets_and_reports_outcome(ledger: Ledger) -> None:
    backend = InProcessBudgets()
    metered = MeteredProvider(scripted_upstream(), ledger=ledger, prices=PRICES, budgets=backend)
    ctx = CallContext(budgets=[Budget("key", "scoped", limit_usd=0.025)], request_id="req-1", deployment="dep")
    with call_context(ctx):
        response = await metered.chat(request(key_id="scoped"))
        with pytest.raises(BudgetExceededError):
            await metered.chat(request(key_id="scoped"))
    assert response.cost_usd == ctx.cost_usd == pytest.approx(ACTUAL)
    assert ctx.reserved_usd == pytest.approx(WORST) and ctx.status == "ok"
    [row] = ledger.rows_sync()
    assert (row["request_id"], row["deployment"], row["key_id"]) == ("req-1", "dep", "scoped")


async def test_soft_threshold_webhook_receives_the_event(ledger: Ledger) -> None:
    from aiohttp import web

    received: list[dict[str, object]] = []
    got = asyncio.Event()

    async def hook(req: web.Request) -> web.Response:
        received.append(await req.json())
        got.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        soft = Budget("team", "ops", limit_usd=0.02, hard=False, webhook_url=f"http://127.0.0.1:{port}/hook")
        metered = _metered(scripted_upstream(), ledger, InProcessBudgets(), soft)
        await metered.chat(request())  # 50 %: nothing
        assert not got.is_set()
        await metered.chat(request())  # 100 %: crosses 80 %
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await runner.cleanup()
    assert received == [{"type": "budget_threshold", "scope": "team", "name": "ops", "period": "total",
                         "threshold": 0.8, "limit_usd": 0.02, "spent_usd": 0.02}]
