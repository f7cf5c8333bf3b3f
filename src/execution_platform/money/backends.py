"""Pick the budget and rate-limit backends from the configuration (``EP_REDIS_URL`` set or not).

The Redis client uses a BLOCKING connection pool: under a burst, callers wait briefly for a free
connection instead of failing with "Too many connections", and the connection count stays bounded.
"""

from __future__ import annotations

from typing import Any

from .budgets import DEFAULT_TTL, REDIS_HOLD_TTL, BudgetBackend, InProcessBudgets, RedisBudgets, SpentLoader
from .ratelimit import InProcessRateLimiter, RateLimiter, RedisRateLimiter


def connect_redis(url: str, *, max_connections: int = 64, timeout: float = 10.0) -> Any:
    """An asyncio Redis client for ``url`` with a bounded, blocking pool."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout)
    return aioredis.Redis(connection_pool=pool)


def make_backends(
    redis_url: str | None,
    *,
    spent_loader: SpentLoader | None = None,
    reservation_ttl: float | None = None,
    prefix: str = "ep",
) -> tuple[BudgetBackend, RateLimiter]:
    """In-process backends without ``redis_url``; Redis-backed ones (shared by replicas) with it.

    ``reservation_ttl``: how long a hold outlives its process (Redis leases, renewed while the call
    runs; default 30 s) or, in-process, a safety net against a hold never settled (default 900 s)."""
    if not redis_url:
        ttl = DEFAULT_TTL if reservation_ttl is None else reservation_ttl
        return InProcessBudgets(spent_loader=spent_loader, ttl=ttl), InProcessRateLimiter()
    client = connect_redis(redis_url)
    return (
        RedisBudgets(client, prefix=prefix, spent_loader=spent_loader,
                     ttl=REDIS_HOLD_TTL if reservation_ttl is None else reservation_ttl),
        RedisRateLimiter(client, prefix=prefix),
    )
