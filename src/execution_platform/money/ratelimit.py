"""Requests-per-minute and tokens-per-minute limits per key, persona and deployment.

Sliding-window LOG, not a fixed or approximated window: every admitted request is kept (timestamp,
tokens) until it leaves the window, so "100 RPM" means at most 100 admissions in ANY 60 s span and
exactly 100 admitted out of a burst of 150. Admission checks every limit that applies and records on
all of them or on none.

Tokens are not known before a call: :meth:`RateLimiter.acquire` holds the caller's estimate (the
prompt upper bound) and :meth:`RateLimiter.settle` replaces it with the real total afterwards. A single
request larger than a whole TPM limit is admitted only into an empty window (it could never pass
otherwise).

Two backends, one interface: :class:`InProcessRateLimiter` (asyncio lock) and
:class:`RedisRateLimiter` (one Lua script per admission, Redis ``TIME`` as the shared clock, so any
number of gateway replicas share one exact limit). Rejections raise :class:`RateLimitExceeded`
(a ``RateLimitError``: 429 with ``retry_after``); :class:`RateHeaders` gives the
``x-ratelimit-*`` header values of the most constrained limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import RateLimitError

LimitScope = Literal["key", "persona", "deployment", "team"]


@dataclass(frozen=True)
class RateLimit:
    scope: str
    name: str
    rpm: int | None = None
    tpm: int | None = None
    window: float = 60.0  # seconds; a minute unless a test wants it shorter

    @property
    def label(self) -> str:
        return f"{self.scope} {self.name!r}"


def format_duration(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` style: ``850ms``, ``1s``, ``6m0s``."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class RateHeaders:
    """Values for the ``x-ratelimit-*`` response headers (the tightest limit of each kind)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    def merge(self, other: RateHeaders) -> RateHeaders:
        out = RateHeaders(**self.__dict__)
        if other.remaining_requests is not None and (
            out.remaining_requests is None or other.remaining_requests < out.remaining_requests
        ):
            out.limit_requests, out.remaining_requests, out.reset_requests = (
                other.limit_requests, other.remaining_requests, other.reset_requests)
        if other.remaining_tokens is not None and (
            out.remaining_tokens is None or other.remaining_tokens < out.remaining_tokens
        ):
            out.limit_tokens, out.remaining_tokens, out.reset_tokens = (
                other.limit_tokens, other.remaining_tokens, other.reset_tokens)
        return out

    def as_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.limit_requests is not None:
            headers["x-ratelimit-limit-requests"] = str(self.limit_requests)
            headers["x-ratelimit-remaining-requests"] = str(max(self.remaining_requests or 0, 0))
            headers["x-ratelimit-reset-requests"] = format_duration(self.reset_requests or 0.0)
        if self.limit_tokens is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            headers["x-ratelimit-remaining-tokens"] = str(max(self.remaining_tokens or 0, 0))
            headers["x-ratelimit-reset-tokens"] = format_duration(self.reset_tokens or 0.0)
        return headers


class RateLimitExceeded(RateLimitError):
    """Rejected by the gateway's own limits; carries the headers for the 429 answer."""

    def __init__(self, message: str, *, retry_after: float, headers: RateHeaders) -> None:
        super().__init__(message, retry_after=retry_after, code="rate_limit_exceeded")
        self.headers = headers

    def response_headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(self.retry_after or 0))), **self.headers.as_headers()}


@dataclass
class Lease:
    """An admitted call: its id, the limits it counts against and its token hold."""

    id: str
    limits: list[RateLimit]
    tokens: int
    headers: RateHeaders = field(default_factory=RateHeaders)
    settled: bool = False
    admitted_at: float | None = None  # in-process clock of the admission (finds its entry on refund)


class RateLimiter(ABC):
    async def acquire(self, limits: Sequence[RateLimit], tokens: int = 0) -> Lease:
        """Admit one request holding ``tokens``, or raise :class:`RateLimitExceeded`."""
        lease = Lease(id=secrets.token_hex(8), limits=list(limits), tokens=max(int(tokens), 0))
        if lease.limits:
            lease.headers = await self._acquire(lease)
        return lease

    async def settle(self, lease: Lease, actual_tokens: int) -> None:
        """Replace the token estimate with the real count (first call only)."""
        if lease.settled:
            return
        lease.settled = True
        if any(limit.tpm is not None for limit in lease.limits):
            await self._settle(lease, max(int(actual_tokens), 0))

    async def refund(self, lease: Lease) -> None:
        """Take the admission back entirely (request and tokens), as if it had never been made.

        For a request refused for another reason before any upstream call (402 over budget): it
        used nothing of the limits. Settles the lease, so a later :meth:`settle` does nothing."""
        if lease.settled:
            return
        lease.settled = True
        if lease.limits:
            await self._refund(lease)

    @abstractmethod
    async def _acquire(self, lease: Lease) -> RateHeaders: ...

    @abstractmethod
    async def _refund(self, lease: Lease) -> None: ...

    @abstractmethod
    async def _settle(self, lease: Lease, actual: int) -> None: ...

    async def aclose(self) -> None:
        return None


def _reject(limit: RateLimit, kind: str, retry_after: float, headers: RateHeaders) -> RateLimitExceeded:
    per = "requests" if kind == "requests" else "tokens"
    cap = limit.rpm if kind == "requests" else limit.tpm
    return RateLimitExceeded(
        f"rate limit of {cap} {per} per {limit.window:g}s reached for {limit.label}; retry in {retry_after:.2f}s",
        retry_after=retry_after,
        headers=headers,
    )


@dataclass
class _Window:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[list[Any]] = field(default_factory=deque)  # [ts, lease id, amount]
    token_total: int = 0
    by_id: dict[str, list[Any]] = field(default_factory=dict)


class InProcessRateLimiter(RateLimiter):
    """Exact within one process."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def _purge(self, w: _Window, horizon: float) -> None:
        while w.requests and w.requests[0] <= horizon:
            w.requests.popleft()
        while w.tokens and w.tokens[0][0] <= horizon:
            _, lid, amount = w.tokens.popleft()
            w.token_total -= amount
            w.by_id.pop(lid, None)

    async def _acquire(self, lease: Lease) -> RateHeaders:
        async with self._lock:
            now = time.monotonic()
            windows = [self._windows.setdefault((lim.scope, lim.name), _Window()) for lim in lease.limits]
            for limit, w in zip(lease.limits, windows, strict=True):
                self._purge(w, now - limit.window)
                if limit.rpm is not None and len(w.requests) + 1 > limit.rpm:
                    freeing = w.requests[len(w.requests) - limit.rpm] if limit.rpm > 0 else now
                    retry = freeing + limit.window - now
                    raise _reject(limit, "requests", retry, self._headers(limit, w, now))
                if limit.tpm is not None and w.token_total and w.token_total + lease.tokens > limit.tpm:
                    freed, retry = 0, limit.window
                    for ts, _, amount in w.tokens:
                        freed += amount
                        if w.token_total - freed + lease.tokens <= limit.tpm:
                            retry = ts + limit.window - now
                            break
                    raise _reject(limit, "tokens", retry, self._headers(limit, w, now))
            headers = RateHeaders()
            lease.admitted_at = now
            for limit, w in zip(lease.limits, windows, strict=True):
                w.requests.append(now)
                if limit.tpm is not None:
                    entry = [now, lease.id, lease.tokens]
                    w.tokens.append(entry)
                    w.by_id[lease.id] = entry
                    w.token_total += lease.tokens
                headers = headers.merge(self._headers(limit, w, now))
            return headers

    @staticmethod
    def _headers(limit: RateLimit, w: _Window, now: float) -> RateHeaders:
        h = RateHeaders()
        if limit.rpm is not None:
            h.limit_requests, h.remaining_requests = limit.rpm, limit.rpm - len(w.requests)
            h.reset_requests = (w.requests[0] + limit.window - now) if w.requests else 0.0
        if limit.tpm is not None:
            h.limit_tokens, h.remaining_tokens = limit.tpm, limit.tpm - w.token_total
            h.reset_tokens = (w.tokens[0][0] + limit.window - now) if w.tokens else 0.0
        return h

    async def _settle(self, lease: Lease, actual: int) -> None:
        async with self._lock:
            for limit in lease.limits:
                w = self._windows.get((limit.scope, limit.name))
                entry = w.by_id.get(lease.id) if w else None
                if w is not None and entry is not None:
                    w.token_total += actual - entry[2]
                    entry[2] = actual

    async def _refund(self, lease: Lease) -> None:
        async with self._lock:
            for limit in lease.limits:
                w = self._windows.get((limit.scope, limit.name))
                if w is None:
                    continue
                if lease.admitted_at is not None:
                    with contextlib.suppress(ValueError):  # already out of the window
                        w.requests.remove(lease.admitted_at)  # equal timestamps are interchangeable
                entry = w.by_id.pop(lease.id, None)
                if entry is not None:
                    w.tokens.remove(entry)
                    w.token_total -= entry[2]


_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, tokens, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function state(i)
  local r, tz, ta = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local rpm, tpm, win = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  return r, tz, ta, rpm, tpm, win
end
local function report(i)
  local r, tz, ta, rpm, tpm, win = state(i)
  local oldest_r = redis.call('ZRANGE', r, 0, 0, 'WITHSCORES')
  local oldest_t = redis.call('ZRANGE', tz, 0, 0, 'WITHSCORES')
  local reset_r, reset_t = 0, 0
  if oldest_r[2] then reset_r = tonumber(oldest_r[2]) + win - now end
  if oldest_t[2] then reset_t = tonumber(oldest_t[2]) + win - now end
  return {redis.call('ZCARD', r), tonumber(redis.call('HGET', ta, '_total') or '0'), reset_r, reset_t}
end
for i = 1, n do
  local r, tz, ta, rpm, tpm, win = state(i)
  local horizon = now - win
  redis.call('ZREMRANGEBYSCORE', r, '-inf', horizon)
  local expired = redis.call('ZRANGEBYSCORE', tz, '-inf', horizon)
  for _, m in ipairs(expired) do
    local a = tonumber(redis.call('HGET', ta, m) or '0')
    redis.call('HINCRBY', ta, '_total', -a)
    redis.call('HDEL', ta, m)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', tz, '-inf', horizon) end
  if rpm >= 0 then
    local count = redis.call('ZCARD', r)
    if count + 1 > rpm then
      local retry = win
      if rpm > 0 then
        local e = redis.call('ZRANGE', r, count - rpm, count - rpm, 'WITHSCORES')
        retry = tonumber(e[2]) + win - now
      end
      local rep = report(i)
      return {0, i, 'requests', retry, rep[1], rep[2], rep[3], rep[4]}
    end
  end
  if tpm >= 0 then
    local total = tonumber(redis.call('HGET', ta, '_total') or '0')
    if total > 0 and total + tokens > tpm then
      local entries = redis.call('ZRANGE', tz, 0, -1, 'WITHSCORES')
      local freed, retry = 0, win
      for j = 1, #entries, 2 do
        freed = freed + tonumber(redis.call('HGET', ta, entries[j]) or '0')
        if total - freed + tokens <= tpm then retry = tonumber(entries[j + 1]) + win - now; break end
      end
      local rep = report(i)
      return {0, i, 'tokens', retry, rep[1], rep[2], rep[3], rep[4]}
    end
  end
end
local out = {1}
for i = 1, n do
  local r, tz, ta, rpm, tpm, win = state(i)
  redis.call('ZADD', r, now, id)
  redis.call('PEXPIRE', r, win * 2)
  if tpm >= 0 then
    redis.call('ZADD', tz, now, id)
    redis.call('HSET', ta, id, tokens)
    redis.call('HINCRBY', ta, '_total', tokens)
    redis.call('PEXPIRE', tz, win * 2)
    redis.call('PEXPIRE', ta, win * 2)
  end
  local rep = report(i)
  for _, v in ipairs(rep) do out[#out + 1] = v end
end
return out
"""

_SETTLE_LUA = """
local id, n, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, n do
  local ta = KEYS[i]
  local a = redis.call('HGET', ta, id)
  if a then
    redis.call('HINCRBY', ta, '_total', actual - tonumber(a))
    redis.call('HSET', ta, id, actual)
  end
end
return 1
"""


_REFUND_LUA = """
local id = ARGV[1]
for i = 1, #KEYS, 3 do
  local r, tz, ta = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  redis.call('ZREM', r, id)
  redis.call('ZREM', tz, id)
  local a = redis.call('HGET', ta, id)
  if a then
    redis.call('HINCRBY', ta, '_total', -tonumber(a))
    redis.call('HDEL', ta, id)
  end
end
return 1
"""


class RedisRateLimiter(RateLimiter):
    """Exact across processes sharing one Redis."""

    def __init__(self, redis: Any, *, prefix: str = "ep") -> None:
        self.redis = redis
        self.prefix = prefix
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._settle_script = redis.register_script(_SETTLE_LUA)
        self._refund_script = redis.register_script(_REFUND_LUA)

    def _keys(self, limit: RateLimit) -> list[str]:
        base = f"{self.prefix}:rl:{limit.scope}:{limit.name}"
        return [base + ":r", base + ":t", base + ":ta"]

    @staticmethod
    def _headers(limit: RateLimit, count: int, total: int, reset_r: int, reset_t: int) -> RateHeaders:
        h = RateHeaders()
        if limit.rpm is not None:
            h.limit_requests, h.remaining_requests, h.reset_requests = limit.rpm, limit.rpm - count, reset_r / 1000
        if limit.tpm is not None:
            h.limit_tokens, h.remaining_tokens, h.reset_tokens = limit.tpm, limit.tpm - total, reset_t / 1000
        return h

    async def _acquire(self, lease: Lease) -> RateHeaders:
        keys: list[str] = []
        argv: list[Any] = [lease.id, lease.tokens, len(lease.limits)]
        for limit in lease.limits:
            keys += self._keys(limit)
            argv += [
                -1 if limit.rpm is None else limit.rpm,
                -1 if limit.tpm is None else limit.tpm,
                int(limit.window * 1000),
            ]
        out = await self._acquire_script(keys=keys, args=argv)
        if int(out[0]) == 0:
            limit = lease.limits[int(out[1]) - 1]
            kind = out[2].decode() if isinstance(out[2], bytes) else str(out[2])
            headers = self._headers(limit, *(int(v) for v in out[4:8]))
            raise _reject(limit, kind, int(out[3]) / 1000, headers)
        headers = RateHeaders()
        for i, limit in enumerate(lease.limits):
            count, total, reset_r, reset_t = (int(v) for v in out[1 + 4 * i : 5 + 4 * i])
            headers = headers.merge(self._headers(limit, count, total, reset_r, reset_t))
        return headers

    async def _settle(self, lease: Lease, actual: int) -> None:
        keys = [self._keys(limit)[2] for limit in lease.limits if limit.tpm is not None]
        await self._settle_script(keys=keys, args=[lease.id, len(keys), actual])

    async def _refund(self, lease: Lease) -> None:
        keys = [key for limit in lease.limits for key in self._keys(limit)]
        await self._refund_script(keys=keys, args=[lease.id])
