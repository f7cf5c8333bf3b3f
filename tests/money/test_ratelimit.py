"""Rate limits are exact: N per window, in-process and across replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from execution_platform.money.backends import connect_redis
from execution_platform.money.ratelimit import (
    InProcessRateLimiter,
    RateLimit,
    RateLimiter,
    RateLimitExceeded,
    RedisRateLimiter,
    format_duration,
)


@pytest.fixture(params=["inprocess", "redis"])
async def limiters(request: pytest.FixtureRequest) -> AsyncIterator[list[RateLimiter]]:
    """Three limiter instances (replicas) sharing one state."""
    if request.param == "inprocess":
        shared = InProcessRateLimiter()
        yield [shared, shared, shared]
        return
    clients = [connect_redis(request.getfixturevalue("redis_url")) for _ in range(3)]
    yield [RedisRateLimiter(c) for c in clients]
    for c in clients:
        await c.aclose()


async def _burst(limiters: list[RateLimiter], limits: list[RateLimit], n: int, tokens: int = 0) -> list[object]:
    rr = itertools.cycle(limiters)
    return await asyncio.gather(*(next(rr).acquire(limits, tokens) for _ in range(n)), return_exceptions=True)


async def test_rpm_admits_exactly_the_limit(limiters: list[RateLimiter]) -> None:
    limit = RateLimit("key", "k", rpm=100)
    results = await _burst(limiters, [limit], 150)
    rejected = [r for r in results if isinstance(r, RateLimitExceeded)]
    assert len(results) - len(rejected) == 100
    assert len(rejected) == 50
    assert all(0 < r.retry_after <= 60 for r in rejected)
    headers = rejected[0].response_headers()
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1


async def test_window_slides(limiters: list[RateLimiter]) -> None:
    limit = RateLimit("persona", "p", rpm=5, window=0.4)
    assert sum(not isinstance(r, Exception) for r in await _burst(limiters, [limit], 8)) == 5
    with pytest.raises(RateLimitExceeded) as info:
        await limiters[1].acquire([limit])
    assert 0 < info.value.retry_after <= 0.4
    await asyncio.sleep(info.value.retry_after + 0.05)
    lease = await limiters[2].acquire([limit])
    assert lease.headers.remaining_requests == 4


async def test_tpm_holds_estimate_then_settles_actual(limiters: list[RateLimiter]) -> None:
    limit = RateLimit("deployment", "d", tpm=1000)
    first = await limiters[0].acquire([limit], tokens=800)
    assert first.headers.remaining_tokens == 200
    with pytest.raises(RateLimitExceeded, match="tokens"):
        await limiters[1].acquire([limit], tokens=300)
    await limiters[0].settle(first, 100)  # the call used far less than estimated
    second = await limiters[2].acquire([limit], tokens=300)
    assert second.headers.remaining_tokens == 600
    assert second.headers.as_headers()["x-ratelimit-limit-tokens"] == "1000"


async def test_all_limits_or_none(limiters: list[RateLimiter]) -> None:
    roomy, tight = RateLimit("key", "k", rpm=10), RateLimit("persona", "p", rpm=1)
    await limiters[0].acquire([tight])
    with pytest.raises(RateLimitExceeded, match="persona 'p'"):
        await limiters[1].acquire([roomy, tight])
    lease = await limiters[2].acquire([roomy])
    assert lease.headers.remaining_requests == 9  # the rejected call was not counted on 'k'


def test_duration_format_matches_openai_style() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(1.0) == "1s"
    assert format_duration(360.0) == "6m0s"


async def test_refund_gives_the_request_and_its_tokens_back(limiters: list[RateLimiter]) -> None:
    limit = RateLimit("key", "refund", rpm=2, tpm=1000)
    kept = await limiters[0].acquire([limit], tokens=300)
    refunded = await limiters[1].acquire([limit], tokens=600)
    await limiters[1].refund(refunded)
    await limiters[1].settle(refunded, 900)  # a refunded lease is settled: nothing comes back
    lease = await limiters[2].acquire([limit], tokens=700)  # 300 + 700 fits; the 2nd of 2 requests
    assert lease.headers.remaining_requests == 0 and lease.headers.remaining_tokens == 0
    with pytest.raises(RateLimitExceeded):
        await limiters[0].acquire([limit])
    assert kept.headers.remaining_requests == 1
