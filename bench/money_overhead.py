"""Per-request overhead of the money checks: rate-limit admission + budget reservation + settlement.

Measures the wrapper's bookkeeping alone (no upstream, no ledger write): one ``acquire`` + ``reserve``
+ ``settle`` + token ``settle`` per request, for a key with a budget and RPM/TPM limits, in-process and
against a private Redis. Reports mean and p50/p99 in microseconds, sequential and with 50 concurrent
callers (throughput).

    python bench/money_overhead.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from execution_platform.money.backends import connect_redis
from execution_platform.money.budgets import Budget, BudgetBackend, InProcessBudgets, RedisBudgets
from execution_platform.money.ratelimit import (
    InProcessRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
)

BUDGETS = [Budget("key", "bench", limit_usd=1e9, period="day"), Budget("team", "bench", limit_usd=1e9)]
LIMITS = [RateLimit("key", "bench", rpm=10**9, tpm=10**12), RateLimit("deployment", "bench", rpm=10**9)]


async def one(budgets: BudgetBackend, limiter: RateLimiter) -> float:
    start = time.perf_counter()
    lease = await limiter.acquire(LIMITS, tokens=500)
    reservation = await budgets.reserve(BUDGETS, 0.02)
    await budgets.settle(reservation, 0.01)
    await limiter.settle(lease, 300)
    return (time.perf_counter() - start) * 1e6


async def measure(name: str, budgets: BudgetBackend, limiter: RateLimiter, n: int) -> None:
    for _ in range(200):  # warm-up (script loading, connections)
        await one(budgets, limiter)
    samples = [await one(budgets, limiter) for _ in range(n)]
    qs = statistics.quantiles(samples, n=100)
    start = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def limited() -> None:
        async with sem:
            await one(budgets, limiter)

    await asyncio.gather(*(limited() for _ in range(n)))
    rate = n / (time.perf_counter() - start)
    print(f"{name:<11} sequential: mean {statistics.mean(samples):7.1f} µs  p50 {qs[49]:7.1f} µs  "
          f"p99 {qs[98]:7.1f} µs   | 50 concurrent: {rate:8.0f} req/s")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    await measure("in-process", InProcessBudgets(), InProcessRateLimiter(), args.requests)
    from tests.servers import redis_server

    try:
        with redis_server() as server:
            client = connect_redis(server.url)
            await measure("redis", RedisBudgets(client), RedisRateLimiter(client), args.requests)
            await client.aclose()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass when redis is missing
        print(f"redis       skipped: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
