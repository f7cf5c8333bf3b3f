"""How the ledger's writer thread puts one batch of rows in the database: the statements, compiled once
for the engine's dialect, their parameters built from plain row tuples, and the transaction.

Every model call ends in one of these batches, so it skips SQLAlchemy's per-statement machinery and
talks to the bare DBAPI connection. Rows arrive as tuples in the ledger's field order; one
``itemgetter`` reorders a tuple into the statement's parameter order and only the columns with a bind
processor (SQLite's DATETIME-to-text) are touched one by one. The roll-up is summed in Python per
(day, attribution), so it is one upsert per distinct key of the batch, not one per row.

On SQLite, each statement the thread steps releases and retakes the GIL, which the event loop wants
all the time under load: every such hand-over is a thread switch that costs both threads CPU. So a
batch is one multi-row ``INSERT`` (a prepared statement per row count, up to :data:`CHUNK_ROWS` rows;
larger batches take several), the roll-up upserts, and an explicit ``BEGIN`` and ``COMMIT`` that the
driver keeps prepared (its implicit ``BEGIN`` and ``commit()`` prepare theirs anew every time): four
steps for a batch of five rows where there were eight, two of them prepared each time. Under the JSON
benchmark this and the leaner indexes of migration 0006 took the writer thread from about 38 to 26 µs
of CPU per row. What is left is mostly the commit's ``fdatasync`` and the thread switches around it.
Tried and dropped, for no gain there: taking the file lock without releasing the GIL, and a TEMP
trigger keeping the roll-up so that a batch is one statement (cheaper commits only made batches
smaller). Other drivers (psycopg) get one ``executemany`` per table, which psycopg sends as one
pipeline, and the driver's ``commit()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from ..storage.tables import ROLLUP_DIMENSIONS, ROLLUP_MEASURES, ledger, ledger_daily

Row = tuple[Any, ...]  # a ledger row's values in the ledger's field order
CHUNK_ROWS = 32  # rows per multi-row INSERT: 32 x 21 parameters stays under SQLite's oldest 999 limit


def naive_utc(value: datetime | None) -> datetime | None:
    """Naive UTC, the storage convention (an aware time is converted, a naive one taken as UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _stamp_processor(bind: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """How a row's ``ts`` is bound: naive UTC, then the dialect's own conversion.

    SQLite stores DATETIME as text; its processor formats each value through a ``%``-template and a
    dict of fields. When that text is exactly ``datetime.isoformat(" ", "microseconds")`` (checked here
    on sample values, so another storage format keeps the dialect's processor) the C method writes it."""
    if bind is None:
        return naive_utc
    samples = (datetime(2026, 1, 2, 3, 4, 5), datetime(1999, 12, 31, 23, 59, 59, 999_999), datetime(2030, 6, 7, 8, 9, 10, 11))
    if all(bind(value) == value.isoformat(" ", "microseconds") for value in samples):

        def text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(" ", "microseconds")

        return text
    return lambda value: bind(naive_utc(value))


def _rollup_summer(fields: Sequence[str], named: bool) -> Callable[[list[Row]], list[Any]]:
    """How a batch of row tuples becomes roll-up statement rows: summed per (day, dimensions), the day
    text formatted once per calendar day rather than once per row."""
    index = {name: i for i, name in enumerate(fields)}
    dims = itemgetter(*[index[name] for name in ROLLUP_DIMENSIONS[1:]])
    ts, n_in, n_out = index["ts"], index["input_tokens"], index["output_tokens"]
    n_cached, n_write = index["cached_input_tokens"], index["cache_write_tokens"]
    n_reasoning, n_cost = index["reasoning_tokens"], index["cost_usd"]
    names = (*ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)
    days: dict[int, str] = {}

    def day(stamp: datetime | None) -> str:
        if stamp is None:
            return ""
        ordinal = stamp.toordinal()
        text = days.get(ordinal)
        if text is None:
            if len(days) > 64:
                days.clear()
            text = days[ordinal] = stamp.strftime("%Y-%m-%d")
        return text

    def summed(rows: list[Row]) -> list[Any]:
        sums: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            key = (day(naive_utc(row[ts])), *[value or "" for value in dims(row)])
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0, 0, 0, 0, 0, 0, 0.0]
            acc[0] += 1
            acc[1] += row[n_in] or 0
            acc[2] += row[n_out] or 0
            acc[3] += row[n_cached] or 0
            acc[4] += row[n_write] or 0
            acc[5] += row[n_reasoning] or 0
            acc[6] += row[n_cost] or 0.0
        if named:
            return [dict(zip(names, (*key, *acc), strict=True)) for key, acc in sums.items()]
        return [(*key, *acc) for key, acc in sums.items()]

    return summed


def _rollup_sql(dialect: Dialect) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding a batch's per-day sums to the roll-up (SQLite and
    PostgreSQL both have it), for parameters in ROLLUP_DIMENSIONS + ROLLUP_MEASURES order."""
    names = (*ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)
    values: dict[str, Any] = {name: sa.bindparam(name) for name in names}
    stmt: sa.Insert
    # Two dialect-specific Insert classes with the same upsert API (not a common base's).
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(ledger_daily).values(values)
        stmt = pg.on_conflict_do_update(
            index_elements=list(ROLLUP_DIMENSIONS),
            set_={name: ledger_daily.c[name] + pg.excluded[name] for name in ROLLUP_MEASURES},
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(ledger_daily).values(values)
        stmt = lite.on_conflict_do_update(
            index_elements=list(ROLLUP_DIMENSIONS),
            set_={name: ledger_daily.c[name] + lite.excluded[name] for name in ROLLUP_MEASURES},
        )
    compiled = stmt.compile(dialect=dialect)
    if compiled.positional and list(compiled.positiontup or ()) != list(names):
        raise RuntimeError("unexpected parameter order in the roll-up statement")
    return compiled.string


class BatchWriter:
    """The statements for one engine's dialect, built once; :meth:`write` runs one batch's transaction."""

    def __init__(self, dialect: Dialect, fields: Sequence[str]) -> None:
        self._dialect = dialect
        self._fields = tuple(fields)
        index = {name: i for i, name in enumerate(self._fields)}
        compiled = ledger.insert().compile(dialect=dialect, column_keys=list(self._fields))
        self._positional = bool(compiled.positional)
        self._order = list(compiled.positiontup or ()) if self._positional else list(self._fields)
        self._pick = itemgetter(*[index[name] for name in self._order])  # a row tuple in the statement's order
        self._fix: list[tuple[int, Callable[[Any], Any]]] = []  # (position, bind processor)
        for position, name in enumerate(self._order):
            proc = ledger.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if name == "ts":
                self._fix.append((position, _stamp_processor(proc)))
            elif proc is not None:
                self._fix.append((position, proc))
        self._insert_one = compiled.string
        self._rollup = _rollup_sql(dialect)
        self._sums = _rollup_summer(self._fields, dialect.paramstyle in ("named", "pyformat"))
        # One statement for a whole chunk needs positional "?" parameters (SQLite's).
        self._multi_row = dialect.name == "sqlite" and dialect.paramstyle == "qmark"
        self._inserts: dict[int, str] = {}  # rows -> multi-row INSERT text (kept: the driver's cache keys on it)

    def write(self, raw: Any, rows: list[Row]) -> None:
        """The rows and their roll-up in one transaction, committed (one fsync) on the DBAPI connection
        ``raw``. Raises on failure with the transaction unfinished; the caller discards ``raw``."""
        cursor = raw.cursor()
        try:
            if self._multi_row:
                # Our own BEGIN unless the driver already keeps a transaction open (Python 3.12's
                # ``autocommit=False`` mode), where its ``commit()`` is the way to end one.
                explicit = not raw.in_transaction
                if explicit:
                    cursor.execute("BEGIN")
                for start in range(0, len(rows), CHUNK_ROWS):
                    chunk = rows[start : start + CHUNK_ROWS]
                    cursor.execute(self._insert_for(len(chunk)), self._flat(chunk))
                sums = self._sums(rows)
                if len(sums) == 1:  # the usual case: one attribution per batch
                    cursor.execute(self._rollup, sums[0])
                else:
                    cursor.executemany(self._rollup, sums)
                if explicit:
                    cursor.execute("COMMIT")
                else:
                    raw.commit()
            else:
                cursor.executemany(self._insert_one, self._params(rows))
                cursor.executemany(self._rollup, self._sums(rows))
                raw.commit()
        finally:
            cursor.close()

    def _insert_for(self, count: int) -> str:
        sql = self._inserts.get(count)
        if sql is None:
            head, _, values = self._insert_one.partition(" VALUES ")
            if not values.startswith("(") or not values.endswith(")"):
                raise RuntimeError(f"unexpected INSERT text for the ledger: {self._insert_one!r}")
            sql = self._inserts[count] = f"{head} VALUES {', '.join([values] * count)}"
        return sql

    def _ordered(self, row: Row) -> list[Any]:
        """One row's parameters in the statement's order, each through its bind processor."""
        values = list(self._pick(row))
        for position, proc in self._fix:
            values[position] = proc(values[position])
        return values

    def _flat(self, rows: list[Row]) -> list[Any]:
        """The chunk's parameters, row after row, in the statement's order."""
        out: list[Any] = []
        for row in rows:
            out.extend(self._ordered(row))
        return out

    def _params(self, rows: list[Row]) -> list[Any]:
        """One parameter set per row (positional list, or a dict for named paramstyles)."""
        ordered = [self._ordered(row) for row in rows]
        if self._positional:
            return ordered
        return [dict(zip(self._order, values, strict=True)) for values in ordered]
