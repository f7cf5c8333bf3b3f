"""Budgets per key, persona and team, enforced by reservation so spend never passes a hard limit.

Before a call, :meth:`BudgetBackend.reserve` atomically checks every budget that applies (key, persona,
team...) and holds the call's WORST-CASE cost on all of them, or on none and raises
``BudgetExceededError`` (402) before the provider is called. After the call, :meth:`settle` adds the
actual cost to ``spent`` and drops the hold; callers settle in ``finally`` so errors, timeouts and
cancellations release too. A hold also carries a TTL, so holds of a crashed process expire on their
own (Redis: leases renewed while the call runs, see :class:`RedisBudgets`) and a leaked hold cannot
block a budget forever. Since ``spent + held + worst_case <=
limit`` is checked atomically and actual <= worst case, spend stays within the limit at any concurrency.

Amounts are integer nano-dollars inside both backends: exact sums, no float drift at the boundary.
Spent-so-far for a budget period is loaded from the ledger the first time a process (in-process
backend) or the Redis deployment (Redis backend, ``HSETNX`` so one loader wins) sees that period.

Soft budgets (``hard=False``) never reject; crossing one of their ``thresholds`` (fractions of the
limit, e.g. 0.8) is logged and, with a ``webhook_url``, POSTed as JSON, exactly once per crossing.

Two backends, one interface: :class:`InProcessBudgets` (an asyncio lock; one process) and
:class:`RedisBudgets` (atomic Lua scripts; shared by every replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ..errors import BudgetExceededError

log = logging.getLogger(__name__)

Scope = Literal["key", "persona", "team"]
Period = Literal["day", "week", "month", "total"]
NANO = 1_000_000_000
DEFAULT_TTL = 900.0
REDIS_HOLD_TTL = 30.0  # renewed every third of it while the call runs; a dead process's holds expire

SpentLoader = Callable[[str, str, datetime | None], Awaitable[float]]
"""``(scope, name, period_start) -> USD already spent`` (e.g. :meth:`Ledger.spent`)."""


def to_nano(usd: float, *, up: bool = False) -> int:
    value = usd * NANO
    return math.ceil(value - 1e-6) if up else round(value)


@dataclass(frozen=True)
class Budget:
    """A spending limit for one scope/name over one period."""

    scope: Scope
    name: str
    limit_usd: float
    period: Period = "total"
    hard: bool = True
    thresholds: tuple[float, ...] = (0.8,)
    webhook_url: str | None = None

    def period_id(self, now: datetime) -> str:
        if self.period == "day":
            return now.strftime("%Y-%m-%d")
        if self.period == "week":
            return now.strftime("%G-W%V")
        if self.period == "month":
            return now.strftime("%Y-%m")
        return "total"

    def period_start(self, now: datetime) -> datetime | None:
        if self.period == "day":
            return now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "week":  # ISO weeks start on Monday
            return (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "month":
            return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return None

    def key_ttl(self) -> float | None:
        """How long a period's counters are worth keeping (seconds), None for ``total``."""
        return {"day": 3 * 86400.0, "week": 15 * 86400.0, "month": 63 * 86400.0}.get(self.period)

    @property
    def label(self) -> str:
        return f"{self.scope} {self.name!r} ({self.period})"


@dataclass
class Reservation:
    """A hold on one or more budget periods; settle it exactly once."""

    id: str
    amount_usd: float
    entries: list[tuple[Budget, str]]  # (budget, period id) held
    settled: bool = False


@dataclass
class _Counter:
    spent: int = 0
    reserved: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, expiry monotonic)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ThresholdNotifier:
    """Logs soft-threshold crossings and POSTs them to the budget's webhook in the background."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.events: list[dict[str, Any]] = []  # last events, for inspection

    def notify(self, budget: Budget, threshold: float, spent_usd: float) -> None:
        event = {
            "type": "budget_threshold",
            "scope": budget.scope,
            "name": budget.name,
            "period": budget.period,
            "threshold": threshold,
            "limit_usd": budget.limit_usd,
            "spent_usd": spent_usd,
        }
        self.events = [*self.events[-99:], event]
        log.warning("budget %s passed %d%% ($%.6f of $%.2f)", budget.label, threshold * 100, spent_usd,
                    budget.limit_usd)
        if budget.webhook_url:
            task = asyncio.get_running_loop().create_task(self._post(budget.webhook_url, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, event: dict[str, Any]) -> None:
        import aiohttp

        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(url, json=event) as resp:
                resp.raise_for_status()
        except Exception as exc:
            log.warning("budget webhook %s failed: %s", url, exc)


class BudgetBackend(ABC):
    """Reserve / settle interface shared by both backends."""

    def __init__(
        self,
        *,
        spent_loader: SpentLoader | None = None,
        ttl: float = DEFAULT_TTL,
        notifier: ThresholdNotifier | None = None,
    ) -> None:
        self.spent_loader = spent_loader
        self.ttl = ttl
        self.notifier = notifier or ThresholdNotifier()
        self._loading: dict[tuple[str, str, str], asyncio.Future[float]] = {}

    async def _load(self, budget: Budget, now: datetime) -> int:
        """Spent so far in the budget's current period, from the ledger. Single-flight per period:
        a burst of first requests shares ONE ledger query instead of each running its own."""
        if self.spent_loader is None:
            return 0
        key = (budget.scope, budget.name, budget.period_id(now))
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.spent_loader(budget.scope, budget.name, budget.period_start(now)))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return to_nano(await asyncio.shield(pending))

    async def reserve(self, budgets: Sequence[Budget], amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` on every budget, or raise ``BudgetExceededError`` holding nothing."""
        now = _utcnow()
        reservation = Reservation(
            id=secrets.token_hex(8), amount_usd=amount_usd, entries=[(b, b.period_id(now)) for b in budgets]
        )
        if reservation.entries:
            await self._reserve(reservation, to_nano(amount_usd, up=True), now)
        return reservation

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Record the actual cost and drop the hold (idempotent: only the first call counts)."""
        if reservation.settled:
            return
        reservation.settled = True
        if not reservation.entries:
            return
        moves = await self._settle(reservation, to_nano(max(actual_usd, 0.0)))
        for (budget, _), (old, new) in zip(reservation.entries, moves, strict=True):
            for threshold in budget.thresholds:
                mark = to_nano(budget.limit_usd * threshold)
                if old < mark <= new:
                    self.notifier.notify(budget, threshold, new / NANO)

    async def release(self, reservation: Reservation) -> None:
        """Drop the hold without spending (the call never reached the provider)."""
        await self.settle(reservation, 0.0)

    @abstractmethod
    async def _reserve(self, reservation: Reservation, amount: int, now: datetime) -> None: ...

    @abstractmethod
    async def _settle(self, reservation: Reservation, actual: int) -> list[tuple[int, int]]:
        """Apply and return (spent before, spent after) per entry, in nano-dollars."""

    @abstractmethod
    async def usage(self, budget: Budget) -> tuple[float, float]:
        """(spent, currently held) in USD for the budget's current period (Redis drops expired holds
        at the next reservation on the budget)."""

    async def aclose(self) -> None:
        return None


def _exceeded(budget: Budget, spent: int, held: int, amount: int) -> BudgetExceededError:
    return BudgetExceededError(
        f"budget exceeded for {budget.label}: ${spent / NANO:.6f} spent and ${held / NANO:.6f} held of "
        f"${budget.limit_usd:.6f}; this call may cost up to ${amount / NANO:.6f}",
        code="budget_exceeded",
    )


class InProcessBudgets(BudgetBackend):
    """Exact within one process: every check-and-hold runs under one asyncio lock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = asyncio.Lock()
        self._counters: dict[tuple[str, str, str], _Counter] = {}

    @staticmethod
    def _key(budget: Budget, period_id: str) -> tuple[str, str, str]:
        return (budget.scope, budget.name, period_id)

    def _purge(self, counter: _Counter, now: float) -> None:
        for rid, (amount, expiry) in list(counter.holds.items()):
            if expiry <= now:
                del counter.holds[rid]
                counter.reserved -= amount

    async def _ensure_loaded(self, entries: list[tuple[Budget, str]], now: datetime) -> None:
        for budget, period_id in entries:
            key = self._key(budget, period_id)
            if key not in self._counters:
                spent = await self._load(budget, now)
                self._counters.setdefault(key, _Counter(spent=spent))

    async def _reserve(self, reservation: Reservation, amount: int, now: datetime) -> None:
        await self._ensure_loaded(reservation.entries, now)
        async with self._lock:
            mono = time.monotonic()
            counters = [self._counters[self._key(b, p)] for b, p in reservation.entries]
            for (budget, _), counter in zip(reservation.entries, counters, strict=True):
                self._purge(counter, mono)
                if budget.hard and counter.spent + counter.reserved + amount > to_nano(budget.limit_usd):
                    raise _exceeded(budget, counter.spent, counter.reserved, amount)
            for counter in counters:
                counter.reserved += amount
                counter.holds[reservation.id] = (amount, mono + self.ttl)

    async def _settle(self, reservation: Reservation, actual: int) -> list[tuple[int, int]]:
        moves = []
        async with self._lock:
            for budget, period_id in reservation.entries:
                counter = self._counters.setdefault(self._key(budget, period_id), _Counter())
                hold = counter.holds.pop(reservation.id, None)
                if hold is not None:
                    counter.reserved -= hold[0]
                old = counter.spent
                counter.spent += actual
                moves.append((old, counter.spent))
        return moves

    async def usage(self, budget: Budget) -> tuple[float, float]:
        now = _utcnow()
        period_id = budget.period_id(now)
        await self._ensure_loaded([(budget, period_id)], now)
        async with self._lock:
            counter = self._counters[self._key(budget, period_id)]
            self._purge(counter, time.monotonic())
            return counter.spent / NANO, counter.reserved / NANO


_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rid, ttl, n, amount = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HEXISTS', h, 'spent') == 0 then return {-1, i} end
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, m in ipairs(expired) do
    local a = tonumber(redis.call('HGET', h, 'h:' .. m) or '0')
    redis.call('HINCRBY', h, 'reserved', -a)
    redis.call('HDEL', h, 'h:' .. m)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
  local limit = tonumber(ARGV[4 + 2 * i - 1])
  if limit >= 0 then
    local spent = tonumber(redis.call('HGET', h, 'spent'))
    local held = tonumber(redis.call('HGET', h, 'reserved') or '0')
    if spent + held + amount > limit then return {0, i, spent, held} end
  end
end
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'h:' .. rid, amount)
  redis.call('ZADD', z, now + ttl, rid)
  local keep = tonumber(ARGV[4 + 2 * i])
  if keep > 0 then redis.call('PEXPIRE', h, keep); redis.call('PEXPIRE', z, keep) end
end
return {1}
"""

_SETTLE_LUA = """
local rid, n, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local a = redis.call('HGET', h, 'h:' .. rid)
  if a then
    redis.call('HINCRBY', h, 'reserved', -tonumber(a))
    redis.call('HDEL', h, 'h:' .. rid)
    redis.call('ZREM', z, rid)
  end
  local old = tonumber(redis.call('HGET', h, 'spent') or '0')
  local new = redis.call('HINCRBY', h, 'spent', actual)
  out[2 * i - 1] = old
  out[2 * i] = new
end
return out
"""

_RENEW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[1 + i])
end
return 1
"""

_INIT_LUA = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSETNX', KEYS[1], 'reserved', 0)
  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return 1
"""


class RedisBudgets(BudgetBackend):
    """Exact across processes: check-and-hold and settle are single Lua scripts; Redis TIME is the clock.

    Holds are leases: each expires ``ttl`` seconds after it was last renewed, and this process renews
    all of its live holds every ``ttl / 3`` seconds (one script call for all of them). A call may thus
    run for any time, while the holds of a process that died (``kill -9``) free their budget within
    ``ttl`` seconds without any reconciliation step.
    """

    def __init__(self, redis: Any, *, prefix: str = "ep", **kwargs: Any) -> None:
        kwargs.setdefault("ttl", REDIS_HOLD_TTL)
        super().__init__(**kwargs)
        self.redis = redis
        self.prefix = prefix
        self._reserve_script = redis.register_script(_RESERVE_LUA)
        self._settle_script = redis.register_script(_SETTLE_LUA)
        self._init_script = redis.register_script(_INIT_LUA)
        self._renew_script = redis.register_script(_RENEW_LUA)
        self._live: dict[str, list[str]] = {}  # reservation id -> its holds' sorted sets
        self._renewer: asyncio.Task[None] | None = None

    def _track(self, reservation: Reservation) -> None:
        self._live[reservation.id] = [self._keys(b, p)[1] for b, p in reservation.entries]
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(), name="budget-holds")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.renew()

    async def renew(self) -> None:
        """Push back the expiry of every hold this process still has."""
        keys: list[str] = []
        args: list[Any] = [int(self.ttl * 1000)]
        for rid, zsets in list(self._live.items()):
            keys += zsets
            args += [rid] * len(zsets)
        if keys:
            try:
                await self._renew_script(keys=keys, args=args)
            except Exception as exc:  # Redis briefly away: the next round retries, holds last ``ttl``
                log.warning("renewing %d budget hold(s) failed: %s", len(self._live), exc)

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    def _keys(self, budget: Budget, period_id: str) -> list[str]:
        base = f"{self.prefix}:budget:{budget.scope}:{budget.name}:{period_id}"
        return [base, base + ":holds"]

    async def _reserve(self, reservation: Reservation, amount: int, now: datetime) -> None:
        keys: list[str] = []
        argv: list[Any] = [reservation.id, int(self.ttl * 1000), len(reservation.entries), amount]
        for budget, period_id in reservation.entries:
            keys += self._keys(budget, period_id)
            argv += [to_nano(budget.limit_usd) if budget.hard else -1, int((budget.key_ttl() or 0) * 1000)]
        for _ in range(len(reservation.entries) + 1):
            result = await self._reserve_script(keys=keys, args=argv)
            code = int(result[0])
            if code == 1:
                self._track(reservation)
                return
            budget, period_id = reservation.entries[int(result[1]) - 1]
            if code == 0:
                raise _exceeded(budget, int(result[2]), int(result[3]), amount)
            spent = await self._load(budget, now)
            ttl_ms = int((budget.key_ttl() or 0) * 1000)
            await self._init_script(keys=self._keys(budget, period_id)[:1], args=[spent, ttl_ms])
        raise RuntimeError("budget counters could not be initialised")

    async def _settle(self, reservation: Reservation, actual: int) -> list[tuple[int, int]]:
        self._live.pop(reservation.id, None)
        keys: list[str] = []
        for budget, period_id in reservation.entries:
            keys += self._keys(budget, period_id)
        out = await self._settle_script(keys=keys, args=[reservation.id, len(reservation.entries), actual])
        return [(int(out[2 * i]), int(out[2 * i + 1])) for i in range(len(reservation.entries))]

    async def usage(self, budget: Budget) -> tuple[float, float]:
        h, _ = self._keys(budget, budget.period_id(_utcnow()))
        spent, held = await self.redis.hmget(h, "spent", "reserved")
        return int(spent or 0) / NANO, int(held or 0) / NANO
