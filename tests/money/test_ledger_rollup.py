"""The daily roll-up behind ``/costs``: exact totals at any range, sessions, retention, migration back-fill."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from execution_platform.money.ledger import Ledger, LedgerRow
from execution_platform.storage import create_engine_from_url, migrate
from execution_platform.storage.tables import ledger as ledger_table
from execution_platform.storage.tables import ledger_daily
from tests.servers import PostgresServer

# Ahead of the clock: a ledger with a retention period prunes once as it starts, at the real time,
# concurrently with the first rows; rows dated in the future are never its to remove, so only the
# test's own ``prune_sync(now)`` prunes them, whatever day the suite runs.
START = datetime(2126, 3, 1)


def _rows(n: int, seed: int = 7) -> list[LedgerRow]:
    rng = random.Random(seed)
    return [
        LedgerRow(
            request_id=f"r{i}", provider=rng.choice(["openai", "anthropic"]), model=rng.choice(["a", "b", "c"]),
            status=rng.choice(["ok", "ok", "ok", "error"]), ts=START + timedelta(minutes=rng.randrange(0, 10 * 1440)),
            key_id=rng.choice([None, "k1", "k2"]), persona=rng.choice([None, "coder", "writer"]),
            session_id=rng.choice([None, "s1", "s2", "s3"]), run_id=rng.choice([None, "run-1"]),
            input_tokens=rng.randrange(0, 100), output_tokens=rng.randrange(0, 50),
            cost_usd=rng.randrange(0, 1000) / 1e5,
        )
        for i in range(n)
    ]


def _expected(rows: list[LedgerRow], since: datetime | None, until: datetime | None, by: str,
              **where: str) -> dict[object, tuple[int, float]]:
    attr = {"key": "key_id", "session": "session_id", "run": "run_id"}.get(by, by)
    out: dict[object, tuple[int, float]] = {}
    for row in rows:
        if (since and row.ts < since) or (until and row.ts >= until):
            continue
        if any(getattr(row, {"key": "key_id"}.get(k, k)) != v for k, v in where.items()):
            continue
        group = row.ts.strftime("%Y-%m-%d") if by == "day" else getattr(row, attr)
        n, usd = out.get(group, (0, 0.0))
        out[group] = (n + 1, usd + row.cost_usd)
    return out


def _got(result: dict[str, object]) -> dict[object, tuple[int, float]]:
    return {g["group"]: (g["requests"], g["cost_usd"]) for g in result["groups"]}  # type: ignore[index, union-attr]


def _same(got: dict[object, tuple[int, float]], want: dict[object, tuple[int, float]]) -> None:
    assert set(got) == set(want)
    for group, (n, usd) in want.items():
        assert got[group][0] == n, group
        assert got[group][1] == pytest.approx(usd, abs=1e-9), group


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = create_engine_from_url(f"sqlite:///{tmp_path / 'ep.db'}")
    else:
        pg: PostgresServer = request.getfixturevalue("pg_srv")
        engine = create_engine_from_url(pg.url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    yield engine
    engine.dispose()


async def test_costs_match_the_raw_rows_for_whole_days_partial_edges_and_every_grouping(any_engine: Engine) -> None:
    rows = _rows(600)
    async with Ledger(any_engine) as ledger:
        await asyncio.gather(*(ledger.record(r) for r in rows))
        with any_engine.connect() as conn:  # the roll-up is much smaller than the ledger
            assert conn.execute(sa.select(sa.func.count()).select_from(ledger_daily)).scalar_one() < 600
        ranges = [(None, None), (START + timedelta(days=2), START + timedelta(days=5)),
                  (START + timedelta(days=1, hours=7, minutes=13), START + timedelta(days=6, hours=2)),
                  (START + timedelta(days=3, hours=1), START + timedelta(days=3, hours=9))]
        for since, until in ranges:
            for by in ("day", "session", "persona", "key", "run"):
                result = await ledger.costs(by, since=since, until=until)
                _same(_got(result), _expected(rows, since, until, by))
                assert result["requests"] == sum(n for n, _ in _expected(rows, since, until, by).values())
        scoped = await ledger.costs("session", where={"key": "k1"}, since=START + timedelta(hours=5))
        _same(_got(scoped), _expected(rows, START + timedelta(hours=5), None, "session", key="k1"))
        assert (await ledger.costs(status="error"))["requests"] == sum(r.status == "error" for r in rows)


async def test_retention_prunes_raw_rows_and_the_totals_stay_exact(any_engine: Engine) -> None:
    rows = _rows(400)
    async with Ledger(any_engine, retention_days=4) as ledger:
        await asyncio.gather(*(ledger.record(r) for r in rows))
        before = await ledger.costs("day")
        spent_before = await ledger.spent("persona", "coder", START)
        removed = await asyncio.to_thread(ledger.prune_sync, START + timedelta(days=10))
        cutoff = START + timedelta(days=6)
        assert removed == sum(r.ts < cutoff for r in rows) > 0
        with any_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(ledger_table)).scalar_one() == 400 - removed
        after = await ledger.costs("day")
        assert after["requests"] == before["requests"] == 400
        assert after["total_usd"] == pytest.approx(before["total_usd"])
        assert after["groups"] == before["groups"]
        assert await ledger.spent("persona", "coder", START) == pytest.approx(spent_before)


def test_migration_back_fills_the_roll_up_from_existing_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0001")
    with engine.begin() as conn:
        for i, day in enumerate((1, 1, 2)):
            conn.execute(sa.text(
                "INSERT INTO ledger (request_id, attempt, ts, persona, provider, model, input_tokens, output_tokens,"
                " cached_input_tokens, reasoning_tokens, cost_usd, status) VALUES "
                f"('r{i}', 1, '2026-01-0{day} 10:00:00.000000', 'coder', 'openai', 'm', 1, 2, 0, 0, 0.5, 'ok')"))
    migrate(engine)
    result = Ledger(engine).costs_sync("day")
    assert [(g["group"], g["requests"], g["cost_usd"]) for g in result["groups"]] == [
        ("2026-01-01", 2, 1.0), ("2026-01-02", 1, 0.5)]
    engine.dispose()
