"""The ledger: one row per model-call attempt outcome, durable before the response completes.

Writes use group commit. ``await ledger.record(row)`` queues the row and returns only once the batch
holding it is committed. The event loop collects rows in a list; while no batch is in flight, the
rows queued in one turn of the loop go to the ledger's own writer thread as one batch, which commits
it in ONE transaction (one fsync) and hands the outcome back with one ``call_soon_threadsafe``; the
loop wakes every waiter and hands over whatever queued meanwhile. Under load, rows arriving while a
commit is in flight form the next batch, so throughput scales with concurrency while each row is
still durable before its caller goes on. A caller cancelled while waiting does not lose its row: the
row is already queued and is committed anyway.

Sync SQLAlchemy in a thread was chosen over the async engine: it serves SQLite (no async driver needed)
and PostgreSQL with one code path. Per row the loop pays a list append and a future; per batch one
hand-over each way (no executor, no asyncio queue, no writer task). The thread wakes only for a
batch, so it never competes with the loop for the interpreter between commits. Queries for
``/costs`` and ``ep costs`` run in ordinary worker threads (:meth:`Ledger.costs`).

The write path is the hot one (every model call ends with a commit): rows travel to the writer as
plain tuples, and :mod:`.ledger_batch` turns a batch into as few DBAPI statements as it can (compiled
once, no SQLAlchemy per-statement machinery) on a connection that the writer thread keeps. A failed
batch discards that connection; the next batch checks out a fresh one from the engine's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..storage.file_lock import beside_sqlite
from ..storage.tables import ROLLUP_MEASURES, ledger_daily
from ..storage.tables import ledger as ledger_table
from .ledger_batch import BatchWriter
from .ledger_batch import naive_utc as _naive_utc

log = logging.getLogger(__name__)

Status = Literal["ok", "error", "cancelled", "partial"]
GROUPS = {
    "persona": ledger_table.c.persona,
    "provider": ledger_table.c.provider,
    "model": ledger_table.c.model,
    "key": ledger_table.c.key_id,
    "team": ledger_table.c.team,
    "deployment": ledger_table.c.deployment,
    "run": ledger_table.c.run_id,
    "session": ledger_table.c.session_id,
}
DAILY = {name: ledger_daily.c[column.name] for name, column in GROUPS.items()}
GROUP_NAMES = (*GROUPS, "day")
SCOPE_COLUMNS = {"key": ledger_table.c.key_id, "persona": ledger_table.c.persona, "team": ledger_table.c.team}


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Naive UTC, the storage convention.

    The aware time's distance from the epoch added to the naive epoch: the same value as
    ``datetime.now(UTC).replace(tzinfo=None)`` (whole microseconds both ways) at a quarter of the
    cost, and every metered attempt stamps its row with it."""
    return _EPOCH + (datetime.now(UTC) - _EPOCH_UTC)


@dataclass
class LedgerRow:
    """One attempt's row. The metering builds it positionally, in this field order (``ROW_FIELDS``,
    which is also the order of the values handed to the writer): reorder only together with it."""

    request_id: str
    provider: str
    model: str
    status: Status
    attempt: int = 1
    ts: datetime = field(default_factory=utcnow)
    key_id: str | None = None
    team: str | None = None
    persona: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    deployment: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error_type: str | None = None


ROW_FIELDS = tuple(f.name for f in fields(LedgerRow))


_Queued = tuple[tuple[Any, ...], "asyncio.Future[None]"]  # a row's values and the future its commit resolves
_row_values = attrgetter(*ROW_FIELDS)  # a row's values as one tuple in ROW_FIELDS order (one C call)


class Ledger:
    """Async, group-committing writer plus the spend queries. ``start()`` before use, ``aclose()`` after."""

    def __init__(self, engine: Engine, *, max_batch: int = 1000, retention_days: int | None = None) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.retention_days = retention_days
        self._pruner: asyncio.Task[None] | None = None
        self._pending: list[_Queued] = []  # rows queued on the loop, not yet handed to the writer
        self._busy = False  # a batch is with the writer thread (or about to be handed over)
        self._drained: list[asyncio.Future[None]] = []  # ``aclose`` calls waiting for the writer to go idle
        self._batches: queue.SimpleQueue[list[_Queued] | None] | None = None  # to the writer; None stops it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None  # the writer; the only user of ``_raw``
        self._raw: Any = None  # DBAPI connection held by the writer thread
        # Several processes on one SQLite file queue their commits in the kernel, not in SQLite's
        # polling busy handler (see storage.file_lock); taken by the writer thread only.
        self._write_lock = beside_sqlite(engine, "write-lock")
        self._writer: BatchWriter | None = None  # the batch statements, built on the first batch
        self.batches = 0  # commits made; lets tests and metrics see the grouping
        self.rows_written = 0

    async def start(self) -> None:
        if self._thread is None:
            self._batches = queue.SimpleQueue()
            self._loop = asyncio.get_running_loop()  # the writer's; asked once, not per row
            # A daemon: an unclosed ledger must not keep the process alive (a row whose record()
            # returned is committed already; one still queued has no caller left to tell).
            self._thread = threading.Thread(
                target=self._run, args=(self._batches, self._loop), name="ledger-writer", daemon=True
            )
            self._thread.start()
            if self.retention_days is not None:
                self._pruner = asyncio.create_task(self._prune_forever(), name="ledger-retention")

    async def aclose(self) -> None:
        """Flush what is queued, then stop the writer."""
        thread, batches, loop = self._thread, self._batches, self._loop
        if thread is None or batches is None or loop is None:
            return
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        while self._busy or self._pending:
            drained: asyncio.Future[None] = loop.create_future()
            self._drained.append(drained)
            await drained
        self._thread = None
        batches.put(None)
        thread.join()  # it only drops its connection

    async def __aenter__(self) -> Ledger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def record(self, row: LedgerRow) -> None:
        """Queue ``row`` and wait until it is committed (raises if the commit failed)."""
        if self._thread is None:
            await self.start()
        await self.submit(row)

    def submit(self, row: LedgerRow) -> asyncio.Future[None]:
        """Queue ``row`` now (no await: nothing can come between the call and the row being queued) and
        return the future its batch's commit resolves. ``start()`` must have run.

        Awaiting the future needs no shield: a waiter cancelled meanwhile cancels only the future,
        which the writer then skips, while the row, already queued, is committed all the same."""
        loop = self._loop
        if self._thread is None or loop is None:
            raise RuntimeError("Ledger.submit before start()")
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((_row_values(row), future))
        if not self._busy:
            # Handed over at the end of this turn of the loop, so rows queued meanwhile join the batch.
            self._busy = True
            loop.call_soon(self._hand_over)
        return future

    @property
    def started(self) -> bool:
        return self._thread is not None

    def _hand_over(self) -> None:
        """On the loop: give the writer what is queued (at most ``max_batch`` rows), or go idle."""
        pending = self._pending
        if not pending or self._batches is None:
            self._busy = False
            drained, self._drained = self._drained, []
            for waiter in drained:
                if not waiter.done():
                    waiter.set_result(None)
            return
        if len(pending) > self.max_batch:
            batch, self._pending = pending[: self.max_batch], pending[self.max_batch :]
        else:
            batch, self._pending = pending, []
        self._batches.put(batch)

    def _run(self, batches: queue.SimpleQueue[list[_Queued] | None], loop: asyncio.AbstractEventLoop) -> None:
        """The writer thread: commit each batch handed over, then tell the loop in one call. Batches
        come one at a time: the next is formed, from everything queued meanwhile, only when the loop
        has taken this one's outcome (group commit)."""
        while True:
            batch = batches.get()
            if batch is None:
                self._drop_connection()
                self._write_lock.close()
                return
            error: Exception | None = None
            try:
                self._insert([values for values, _ in batch])
            except Exception as exc:
                log.exception("ledger commit of %d row(s) failed", len(batch))
                error = exc
            try:
                loop.call_soon_threadsafe(self._settled, batch, error)
            except RuntimeError:  # the loop is closed: nobody is left waiting
                return

    def _settled(self, batch: list[_Queued], error: Exception | None) -> None:
        """On the loop: a batch's outcome to its waiters (a cancelled waiter's future is skipped), then
        the next batch to the writer."""
        if error is None:
            self.batches += 1
            self.rows_written += len(batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        self._hand_over()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        """One batch: the rows and their roll-up in one transaction (one commit, one fsync), on the
        writer thread's connection."""
        writer = self._writer
        if writer is None:
            writer = self._writer = BatchWriter(self.engine.dialect, ROW_FIELDS)
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        try:
            with self._write_lock:
                # The DBAPI connection itself: the pool's proxy would forward each call through __getattr__.
                writer.write(self._raw.dbapi_connection, rows)
        except BaseException:
            self._drop_connection(invalidate=True)
            raise

    def _drop_connection(self, invalidate: bool = False) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                raw.invalidate()  # a failed connection must not go back into the pool
            else:
                raw.close()

    # -- queries ---------------------------------------------------------------------------------
    def _filters(
        self,
        since: datetime | None,
        until: datetime | None,
        status: str | Sequence[str] | None,
        where: dict[str, str] | None,
    ) -> list[Any]:
        clauses: list[Any] = []
        if since is not None:
            clauses.append(ledger_table.c.ts >= _naive_utc(since))
        if until is not None:
            clauses.append(ledger_table.c.ts < _naive_utc(until))
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            clauses.append(ledger_table.c.status.in_(statuses))
        for name, value in (where or {}).items():
            column = GROUPS.get(name)
            if column is None:
                raise ValueError(f"cannot filter on {name!r}")
            clauses.append(column == value)
        return clauses

    def _day(self) -> Any:
        if self.engine.dialect.name == "sqlite":
            return sa.func.substr(sa.cast(ledger_table.c.ts, sa.String), 1, 10)
        return sa.func.to_char(ledger_table.c.ts, "YYYY-MM-DD")

    def _raw_groups(
        self, conn: Any, by: str | None, clauses: list[Any]
    ) -> list[tuple[Any, list[Any]]]:
        t = ledger_table.c
        measures = [sa.func.count(), sa.func.sum(t.input_tokens), sa.func.sum(t.output_tokens),
                    sa.func.sum(t.cached_input_tokens), sa.func.sum(t.cache_write_tokens), sa.func.sum(t.reasoning_tokens),
                    sa.func.sum(t.cost_usd)]
        key = None if by is None else (self._day() if by == "day" else GROUPS[by])
        query = sa.select(*([key] if key is not None else []), *measures).where(*clauses)
        if key is not None:
            query = query.group_by(key)
        out = []
        for row in conn.execute(query):
            values = list(row)
            group = values.pop(0) if key is not None else None
            if values[0]:
                out.append((group, values))
        return out

    def _daily_groups(
        self, conn: Any, by: str | None, first_day: str | None, end_day: str | None,
        statuses: list[str] | None, where: dict[str, str] | None,
    ) -> list[tuple[Any, list[Any]]]:
        d = ledger_daily.c
        measures = [sa.func.sum(d[name]) for name in ROLLUP_MEASURES]
        clauses: list[Any] = []
        if first_day is not None:
            clauses.append(d.day >= first_day)
        if end_day is not None:
            clauses.append(d.day < end_day)
        if statuses:
            clauses.append(d.status.in_(statuses))
        for name, value in (where or {}).items():
            clauses.append(DAILY[name] == (value or ""))
        key = None if by is None else (d.day if by == "day" else DAILY[by])
        query = sa.select(*([key] if key is not None else []), *measures).where(*clauses)
        if key is not None:
            query = query.group_by(key)
        out = []
        for row in conn.execute(query):
            values = list(row)
            group = values.pop(0) if key is not None else None
            if values[0]:
                out.append((None if group == "" else group, values))
        return out

    def costs_sync(
        self,
        by: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        where: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``{"total_usd", "requests", "input_tokens", "output_tokens", "groups": [...]}`` (the external contract, README: ``GET /costs``).

        Whole days come from the daily roll-up (fast at millions of rows, exact after retention has
        pruned raw rows); only the partial days at the edges of a range given to the second are read
        from raw rows, through the ``ts`` index (``(key_id, ts)`` for one key's rows).
        """
        if by is not None and by not in GROUP_NAMES:
            raise ValueError(f"by must be one of {', '.join(GROUP_NAMES)}")
        for name in where or {}:
            if name not in GROUPS:
                raise ValueError(f"cannot filter on {name!r}")
        since, until = _naive_utc(since), _naive_utc(until)
        statuses = None if not status else ([status] if isinstance(status, str) else list(status))
        full_from = None if since is None else _ceil_day(since)
        full_to = None if until is None else _floor_day(until)
        parts: list[tuple[Any, list[Any]]] = []
        with self.engine.connect() as conn:
            if full_from is not None and full_to is not None and full_from >= full_to:
                parts += self._raw_groups(conn, by, self._filters(since, until, statuses, where))
            else:
                parts += self._daily_groups(conn, by, _day_text(full_from), _day_text(full_to), statuses, where)
                if since is not None and full_from is not None and since < full_from:
                    parts += self._raw_groups(conn, by, self._filters(since, full_from, statuses, where))
                if until is not None and full_to is not None and full_to < until:
                    parts += self._raw_groups(conn, by, self._filters(full_to, until, statuses, where))
        merged: dict[Any, list[Any]] = {}
        for group, values in parts:
            acc = merged.get(group)
            if acc is None:
                merged[group] = [int(v or 0) for v in values[:6]] + [float(values[6] or 0.0)]
            else:
                for i in range(6):
                    acc[i] += int(values[i] or 0)
                acc[6] += float(values[6] or 0.0)
        names = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                 "reasoning_tokens", "cost_usd")
        rows = [{"group": group, **dict(zip(names, values, strict=True))} for group, values in merged.items()]
        total = {name: sum(row[name] for row in rows) for name in names}
        total["cost_usd"] = float(total["cost_usd"])
        groups: list[dict[str, Any]] = []
        if by is not None:
            groups = [{"group": row["group"], "cost_usd": row["cost_usd"],
                       **{name: row[name] for name in names[:6]}} for row in rows]
            if by == "day":
                groups.sort(key=lambda row: row["group"] or "")
            else:
                groups.sort(key=lambda row: (-row["cost_usd"], row["group"] is None, str(row["group"] or "")))
        return {
            "total_usd": total["cost_usd"],
            "requests": total["requests"],
            "input_tokens": total["input_tokens"],
            "output_tokens": total["output_tokens"],
            "cached_input_tokens": total["cached_input_tokens"],
            "cache_write_tokens": total["cache_write_tokens"],
            "reasoning_tokens": total["reasoning_tokens"],
            "by": by,
            "groups": groups,
        }

    async def costs(self, by: str | None = None, **filters: Any) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: self.costs_sync(by, **filters))

    def spent_sync(self, scope: str, name: str, since: datetime | None = None) -> float:
        """USD recorded for one budget scope (key/persona/team) since a period start (roll-up backed, so
        retention never lowers what a budget has spent)."""
        if scope not in SCOPE_COLUMNS:
            raise ValueError(f"unknown budget scope {scope!r}")
        return float(self.costs_sync(since=since, where={scope: name})["total_usd"])

    def series_sync(
        self, group: str, *, since: datetime | None = None, until: datetime | None = None,
        where: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Spend per day and ``group`` (whole days, from the roll-up): the dashboard's stacked chart."""
        if group not in DAILY:
            raise ValueError(f"group must be one of {', '.join(DAILY)}")
        d = ledger_daily.c
        key = DAILY[group]
        clauses: list[Any] = []
        if since is not None:
            clauses.append(d.day >= _day_text(_floor_day(_naive_utc(since))))  # type: ignore[arg-type]
        if until is not None:
            clauses.append(d.day < _day_text(_ceil_day(_naive_utc(until))))  # type: ignore[arg-type]
        for name, value in (where or {}).items():
            clauses.append(DAILY[name] == (value or ""))
        query = (sa.select(d.day, key, sa.func.sum(d.cost_usd), sa.func.sum(d.requests))
                 .where(*clauses).group_by(d.day, key).order_by(d.day, key))
        with self.engine.connect() as conn:
            return [{"day": day, "group": name or None, "cost_usd": float(cost or 0.0), "requests": int(n or 0)}
                    for day, name, cost, n in conn.execute(query)]

    def recent_sync(self, limit: int = 50, where: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The latest rows, newest first (served by the ``ts`` and ``(key_id, ts)`` indexes)."""
        t = ledger_table.c
        query = (sa.select(t.ts, t.request_id, t.attempt, t.key_id, t.persona, t.session_id, t.provider, t.model,
                           t.status, t.error_type, t.latency_ms, t.ttft_ms, t.input_tokens, t.output_tokens,
                           t.cost_usd)
                 .where(*self._filters(None, None, None, where)).order_by(t.ts.desc()).limit(limit))
        with self.engine.connect() as conn:
            # str() keys: SQLAlchemy's are a str subclass that strict JSON encoders refuse
            return [{**{str(k): v for k, v in row._asdict().items()}, "ts": row.ts.isoformat() + "Z"}
                    for row in conn.execute(query)]

    def prune_sync(self, now: datetime | None = None) -> int:
        """Delete raw rows older than ``retention_days`` (the roll-up keeps their totals); returns the count."""
        if self.retention_days is None:
            return 0
        cutoff = _floor_day((now or utcnow()) - timedelta(days=self.retention_days))
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(ledger_table).where(ledger_table.c.ts < cutoff))
        return int(result.rowcount or 0)

    async def _prune_forever(self, every: float = 3600.0) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.prune_sync)
                if removed:
                    log.info("ledger retention: %d raw row(s) older than %d days removed", removed,
                             self.retention_days)
            except Exception:
                log.exception("ledger retention failed")
            await asyncio.sleep(every)

    async def spent(self, scope: str, name: str, since: datetime | None = None) -> float:
        return await asyncio.to_thread(self.spent_sync, scope, name, since)

    def rows_sync(self, *, where: dict[str, str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Raw rows, oldest first (tests, audits)."""
        query = sa.select(ledger_table).where(*self._filters(None, None, None, where)).order_by(ledger_table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]


def _floor_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(value: datetime) -> datetime:
    floor = _floor_day(value)
    return floor if floor == value else floor + timedelta(days=1)


def _day_text(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


CSV_FIELDS = ("group", "cost_usd", "requests", "input_tokens", "output_tokens", "cached_input_tokens",
              "cache_write_tokens", "reasoning_tokens")


def costs_to_csv(result: dict[str, Any]) -> str:
    """CSV of a :meth:`Ledger.costs` result: one line per group, or a single ``total`` line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    rows = result["groups"] if result.get("by") else [
        {"group": "total", "cost_usd": result["total_usd"], **{k: result[k] for k in CSV_FIELDS[2:]}}
    ]
    for row in rows:
        writer.writerow({**row, "cost_usd": f"{row['cost_usd']:.9f}".rstrip("0").rstrip(".") or "0"})
    return out.getvalue()
