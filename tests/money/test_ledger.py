"""Ledger: group commit, durability (a row is committed when record() returns), /costs queries."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from execution_platform.money.ledger import Ledger, LedgerRow, costs_to_csv
from execution_platform.storage import create_engine_from_url
from execution_platform.storage.file_lock import beside_sqlite
from execution_platform.storage.tables import ledger as ledger_table


def _row(i: int, **kw: object) -> LedgerRow:
    base: dict[str, object] = {"request_id": f"r{i}", "provider": "openai", "model": "gpt-4o-mini", "status": "ok",
                               "cost_usd": 0.01, "input_tokens": 10, "output_tokens": 5}
    base.update(kw)
    return LedgerRow(**base)  # type: ignore[arg-type]


def _count(url: str) -> int:
    other = create_engine_from_url(url)  # a separate engine: sees only committed data
    try:
        with other.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ledger_table)).scalar_one()
    finally:
        other.dispose()


async def test_concurrent_rows_share_commits_and_all_land(ledger: Ledger, sqlite_url: str) -> None:
    await asyncio.gather(*(ledger.record(_row(i)) for i in range(300)))
    assert ledger.rows_written == 300
    assert ledger.batches < 30  # grouped, not one commit per row
    assert _count(sqlite_url) == 300


async def test_row_is_committed_when_record_returns(ledger: Ledger, sqlite_url: str) -> None:
    await ledger.record(_row(1))
    assert _count(sqlite_url) == 1


async def test_cancelled_waiter_still_gets_its_row(ledger: Ledger, sqlite_url: str) -> None:
    task = asyncio.create_task(ledger.record(_row(7)))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    await ledger.aclose()  # flushes the queue
    assert _count(sqlite_url) == 1


async def test_a_batch_commits_only_while_it_holds_the_files_writer_lock(
    ledger: Ledger, engine: Engine, sqlite_url: str
) -> None:
    """Processes sharing one SQLite file queue their ledger commits on a lock beside it (woken by the
    kernel, not SQLite's polling busy handler): while another holder has it, no batch commits."""
    other_process = beside_sqlite(engine, "write-lock")  # its own open file: excluded like another process
    assert other_process.path == f"{engine.url.database}.write-lock"
    with other_process:
        waiter = asyncio.ensure_future(ledger.record(_row(1)))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        assert _count(sqlite_url) == 0
    await asyncio.wait_for(waiter, 10)
    assert _count(sqlite_url) == 1
    other_process.close()


def test_databases_without_a_file_get_a_lock_that_does_nothing() -> None:
    memory = create_engine_from_url("sqlite://")
    try:
        lock = beside_sqlite(memory, "write-lock")
        assert lock.path is None
        with lock, lock:  # not even exclusive with itself
            pass
    finally:
        memory.dispose()


async def test_rows_are_stored_as_sqlalchemy_stores_them(ledger: Ledger, engine: Engine, sqlite_url: str) -> None:
    """The writer binds parameters itself (no per-row SQLAlchemy): the stored text must not differ."""
    stamps = [datetime(2026, 3, 1, 12), datetime(2026, 3, 1, 12, 0, 0, 5),
              datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))]
    for i, ts in enumerate(stamps):
        await ledger.record(_row(i, ts=ts, latency_ms=1.5, key_id="k"))
    with engine.begin() as conn:
        for i, ts in enumerate(stamps):
            naive = ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
            conn.execute(ledger_table.insert(), {**_row(100 + i, latency_ms=1.5, key_id="k").__dict__, "ts": naive})
    path = sqlite_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as raw:
        stored = raw.execute("SELECT ts, latency_ms, cost_usd, key_id FROM ledger ORDER BY id").fetchall()
    assert stored[:3] == stored[3:]
    assert stored[2][0] == "2026-03-02 01:30:00.000000"


async def test_concurrent_closes_both_flush_and_return(ledger: Ledger, sqlite_url: str) -> None:
    for i in range(50):
        ledger.submit(_row(i))
    await asyncio.wait_for(asyncio.gather(ledger.aclose(), ledger.aclose()), 30)
    assert _count(sqlite_url) == 50


async def test_a_failed_batch_fails_its_waiters_and_the_writer_goes_on(ledger: Ledger, sqlite_url: str) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await ledger.record(_row(1, provider=None))  # NOT NULL: the whole batch is refused
    await ledger.record(_row(2))
    assert _count(sqlite_url) == 1


async def test_a_batch_larger_than_one_insert_statement_lands_whole_or_not_at_all(ledger: Ledger, sqlite_url: str) -> None:
    """A batch goes in as several multi-row INSERTs on SQLite (one per 32 rows): every row lands with its
    own values and the roll-up counts each once; a bad row in a later statement refuses the whole batch."""
    rows = [_row(i, key_id=f"k{i % 3}", persona=None if i % 2 else "p", input_tokens=i, cost_usd=i / 1000,
                 ts=datetime(2026, 4, 1 + i % 2, 9, 0, i % 60)) for i in range(75)]
    await asyncio.gather(*(ledger.record(row) for row in rows))
    assert ledger.batches == 1
    stored = ledger.rows_sync()
    assert [(r["request_id"], r["key_id"], r["persona"], r["input_tokens"], r["ts"]) for r in stored] == [
        (row.request_id, row.key_id, row.persona, row.input_tokens, row.ts) for row in rows]
    by_key = {g["group"]: (g["requests"], g["input_tokens"]) for g in ledger.costs_sync("key")["groups"]}
    assert by_key == {f"k{k}": (25, sum(range(k, 75, 3))) for k in range(3)}

    bad = [_row(100 + i, provider=None if i == 70 else "openai") for i in range(75)]
    results = await asyncio.gather(*(ledger.record(row) for row in bad), return_exceptions=True)
    assert all(isinstance(result, sqlite3.IntegrityError) for result in results)
    assert _count(sqlite_url) == 75
    await ledger.record(_row(200))
    assert _count(sqlite_url) == 76


def test_an_unclosed_ledger_does_not_keep_the_process_alive(sqlite_url: str, engine: Engine) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from execution_platform.money.ledger import Ledger, LedgerRow
        from execution_platform.storage import create_engine_from_url
        async def main():
            led = Ledger(create_engine_from_url({sqlite_url!r}))
            await led.record(LedgerRow(request_id="u1", provider="p", model="m", status="ok"))
        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=os.getcwd())
    assert _count(sqlite_url) == 1


def test_rows_survive_kill_9(tmp_path, sqlite_url: str, engine: Engine) -> None:
    """A writer killed with SIGKILL loses no row whose record() had returned."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from execution_platform.money.ledger import Ledger, LedgerRow
        from execution_platform.storage import create_engine_from_url
        async def main():
            led = Ledger(create_engine_from_url({sqlite_url!r}))
            async def one(i):
                await led.record(LedgerRow(request_id=f"k{{i}}", provider="p", model="m", status="ok"))
                sys.stdout.write(f"k{{i}}\\n"); sys.stdout.flush()
            i = 0
            while True:
                await asyncio.gather(*(one(i + j) for j in range(20)))
                i += 20
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    acknowledged = []
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) >= 200:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(ledger_table.c.request_id)).scalars())
    assert set(acknowledged) <= stored


async def test_costs_group_filter_and_csv(ledger: Ledger) -> None:
    day1, day2 = datetime(2026, 3, 1, 12), datetime(2026, 3, 2, 9)
    rows = [
        _row(1, persona="architect", ts=day1, cost_usd=0.5, key_id="k1", team="a"),
        _row(2, persona="architect", ts=day2, cost_usd=0.25, key_id="k2", team="a"),
        _row(3, persona="coder", ts=day2, cost_usd=1.0, model="claude", provider="anthropic", team="b"),
        _row(4, persona="coder", ts=day2, cost_usd=0.0, status="error", error_type="upstream_error"),
    ]
    for row in rows:
        await ledger.record(row)
    total = await ledger.costs()
    assert total["total_usd"] == 1.75 and total["requests"] == 4
    by_persona = await ledger.costs("persona", status="ok")
    assert [(g["group"], g["cost_usd"], g["requests"]) for g in by_persona["groups"]] == [
        ("coder", 1.0, 1), ("architect", 0.75, 2)
    ]
    by_day = await ledger.costs("day", since=day1 + timedelta(hours=1))
    assert [(g["group"], g["requests"]) for g in by_day["groups"]] == [("2026-03-02", 3)]
    until = await ledger.costs("provider", until=day2)
    assert until["groups"] == [{**until["groups"][0], "group": "openai", "requests": 1}]
    errors = await ledger.costs(status="error")
    assert errors["requests"] == 1
    parsed = list(csv.DictReader(io.StringIO(costs_to_csv(await ledger.costs("team")))))
    assert {r["group"]: float(r["cost_usd"]) for r in parsed} == {"b": 1.0, "a": 0.75, "": 0.0}
    assert await ledger.spent("persona", "architect", since=day2) == 0.25
