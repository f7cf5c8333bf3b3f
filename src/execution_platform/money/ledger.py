"""The ledger: one row per model-call attempt outcome, durable before the response completes.

Writes use group commit. ``await ledger.record(row)`` queues the row and returns only once the batch
holding it is committed; a single writer task takes everything queued, commits it in ONE transaction
(one fsync) on a worker thread, wakes every waiter, and repeats. Under load, rows arriving while a
commit is in flight form the next batch, so throughput scales with concurrency while each row is still
durable before its caller goes on. A caller cancelled while waiting does not lose its row: the row is
already queued and is committed anyway.

Sync SQLAlchemy in a thread was chosen over the async engine: it serves SQLite (no async driver needed)
and PostgreSQL with one code path, and one thread hop per *batch* is negligible next to a commit.
Queries for ``/costs`` and ``ep costs`` run the same way (:meth:`Ledger.costs`).

The write path is the hot one (every model call ends with a commit), so it skips SQLAlchemy's
per-statement machinery: the INSERT is compiled once for the engine's dialect, rows travel as plain
tuples, and each batch is ONE DBAPI ``executemany`` plus ``commit`` on a connection that the writer
keeps (one dedicated thread, so the connection never changes threads). A failed batch discards that
connection; the next batch checks out a fresh one from the engine's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..storage.tables import ledger as ledger_table

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
}
GROUP_NAMES = (*GROUPS, "day")
SCOPE_COLUMNS = {"key": ledger_table.c.key_id, "persona": ledger_table.c.persona, "team": ledger_table.c.team}


def utcnow() -> datetime:
    """Naive UTC, the storage convention."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class LedgerRow:
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


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


class Ledger:
    """Async, group-committing writer plus the spend queries. ``start()`` before use, ``aclose()`` after."""

    def __init__(self, engine: Engine, *, max_batch: int = 1000) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[tuple[Any, ...], asyncio.Future[None]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None  # the one thread that owns ``_raw``
        self._raw: Any = None  # DBAPI connection held by the writer thread
        self._insert_sql: tuple[str, Callable[[list[tuple[Any, ...]]], list[Any]]] | None = None
        self.batches = 0  # commits made; lets tests and metrics see the grouping
        self.rows_written = 0

    async def start(self) -> None:
        if self._writer is None:
            self._queue = asyncio.Queue()
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
            self._writer = asyncio.create_task(self._run(), name="ledger-writer")

    async def aclose(self) -> None:
        """Flush what is queued, then stop the writer."""
        if self._writer is None or self._queue is None:
            return
        await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._drop_connection)
            thread.shutdown(wait=False)

    async def __aenter__(self) -> Ledger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def record(self, row: LedgerRow) -> None:
        """Queue ``row`` and wait until it is committed (raises if the commit failed)."""
        if self._writer is None:
            await self.start()
        assert self._queue is not None
        values = tuple([getattr(row, name) for name in ROW_FIELDS])
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((values, future))
        await asyncio.shield(future)

    async def _run(self) -> None:
        assert self._queue is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await loop.run_in_executor(self._thread, self._insert, [values for values, _ in batch])
            except Exception as exc:
                log.exception("ledger commit of %d row(s) failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.batches += 1
                self.rows_written += len(batch)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            finally:
                for _ in batch:
                    queue.task_done()

    def _prepared_insert(self) -> tuple[str, Callable[[list[tuple[Any, ...]]], list[Any]]]:
        """The INSERT compiled once for this dialect, and how to turn row tuples into its parameters
        (column bind processors applied, e.g. SQLite's DATETIME-to-text, as SQLAlchemy would)."""
        if self._insert_sql is None:
            dialect = self.engine.dialect
            compiled = ledger_table.insert().compile(dialect=dialect, column_keys=list(ROW_FIELDS))
            processors: list[Callable[[Any], Any] | None] = []
            for name in ROW_FIELDS:
                column_type = ledger_table.c[name].type
                processors.append(column_type.dialect_impl(dialect).bind_processor(dialect))
            process = {name: proc for name, proc in zip(ROW_FIELDS, processors, strict=True) if proc is not None}
            index = {name: i for i, name in enumerate(ROW_FIELDS)}
            ts = index["ts"]

            def one(row: tuple[Any, ...]) -> dict[str, Any]:
                values = dict(zip(ROW_FIELDS, row, strict=True))
                values["ts"] = _naive_utc(row[ts])
                for name, proc in process.items():
                    values[name] = proc(values[name])
                return values

            if compiled.positional:
                order = list(compiled.positiontup or ())

                def params(rows: list[tuple[Any, ...]]) -> list[Any]:
                    out = []
                    for row in rows:
                        values = one(row)
                        out.append(tuple([values[name] for name in order]))
                    return out
            else:

                def params(rows: list[tuple[Any, ...]]) -> list[Any]:
                    return [one(row) for row in rows]

            self._insert_sql = (compiled.string, params)
        return self._insert_sql

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        """One batch: one executemany, one commit (one fsync), on the writer thread's connection."""
        sql, params = self._prepared_insert()
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        raw = self._raw
        try:
            cursor = raw.cursor()
            try:
                cursor.executemany(sql, params(rows))
            finally:
                cursor.close()
            raw.commit()
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

    def costs_sync(
        self,
        by: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        where: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``{"total_usd", "requests", "input_tokens", "output_tokens", "groups": [...]}`` (SPEC /costs)."""
        if by is not None and by not in GROUP_NAMES:
            raise ValueError(f"by must be one of {', '.join(GROUP_NAMES)}")
        t = ledger_table.c
        measures = [
            sa.func.coalesce(sa.func.sum(t.cost_usd), 0.0).label("cost_usd"),
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(t.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(t.output_tokens), 0).label("output_tokens"),
            sa.func.coalesce(sa.func.sum(t.cached_input_tokens), 0).label("cached_input_tokens"),
            sa.func.coalesce(sa.func.sum(t.cache_write_tokens), 0).label("cache_write_tokens"),
            sa.func.coalesce(sa.func.sum(t.reasoning_tokens), 0).label("reasoning_tokens"),
        ]
        clauses = self._filters(since, until, status, where)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(*measures).where(*clauses)).one()._asdict()
            groups: list[dict[str, Any]] = []
            if by is not None:
                key = (self._day() if by == "day" else GROUPS[by]).label("group")
                query = sa.select(key, *measures).where(*clauses).group_by(key)
                query = query.order_by(key) if by == "day" else query.order_by(sa.desc("cost_usd"), key)
                groups = [row._asdict() for row in conn.execute(query)]
        for row in [total, *groups]:
            row["cost_usd"] = float(row["cost_usd"])
            for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                         "reasoning_tokens"):
                row[name] = int(row[name])
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
        """USD recorded for one budget scope (key/persona/team) since a period start."""
        clauses = [SCOPE_COLUMNS[scope] == name]
        if since is not None:
            clauses.append(ledger_table.c.ts >= _naive_utc(since))
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ledger_table.c.cost_usd), 0.0)).where(*clauses)
            ).scalar_one()
        return float(value)

    async def spent(self, scope: str, name: str, since: datetime | None = None) -> float:
        return await asyncio.to_thread(self.spent_sync, scope, name, since)

    def rows_sync(self, *, where: dict[str, str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Raw rows, oldest first (tests, audits)."""
        query = sa.select(ledger_table).where(*self._filters(None, None, None, where)).order_by(ledger_table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]


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
