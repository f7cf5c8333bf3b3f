"""Ledger at scale: seed N ledger rows (default 1 000 000) and time what ``/costs`` and ``/ui`` ask.

    .venv/bin/python bench/ledger_scale.py [--rows 1000000] [--databases sqlite,postgres]

Rows go in through the ledger's own write path (``Ledger._insert``: the rows and their daily roll-up
in one transaction, batches of 5 000), shaped like real traffic: 90 days, 40 personas, 200 keys,
20 teams, sessions of ~50 requests that belong to one key, persona and run. PostgreSQL is a private
server started the way the tests start it (Debian ``postgresql`` binaries). Each query runs 5 times;
the median is reported, next to the same question asked of the raw rows with a full scan (what
``/costs`` did before the roll-up). Results: a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from execution_platform.money.ledger import ROW_FIELDS, Ledger, LedgerRow  # noqa: E402
from execution_platform.storage import create_engine_from_url, migrate  # noqa: E402
from execution_platform.storage.tables import ledger as ledger_table  # noqa: E402

END = datetime(2026, 6, 30)
DAYS = 90
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("openai", "gpt-5-mini"),
          ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash"),
          ("gemini", "gemini-2.5-pro")]


def rows(n: int, seed: int = 1) -> Any:
    rng = random.Random(seed)
    personas = [f"persona-{i:02d}" for i in range(40)]
    targets = {p: rng.sample(MODELS, 2) for p in personas}
    keys = [f"key_{i:04d}" for i in range(200)]
    teams = [f"team-{i:02d}" for i in range(20)]
    session: dict[str, Any] = {}
    left = 0
    for i in range(n):
        if left == 0:
            key = rng.choice(keys)
            session = {"session_id": f"sess-{i:08d}", "key_id": key, "team": teams[hash(key) % 20],
                       "persona": rng.choice(personas), "run_id": f"run-{rng.randrange(2000):05d}",
                       "start": END - timedelta(days=DAYS) + timedelta(seconds=rng.randrange(DAYS * 86400))}
            left = rng.randrange(10, 90)
        left -= 1
        provider, model = targets[session["persona"]][0 if rng.random() < 0.9 else 1]
        ts = session["start"] + timedelta(seconds=rng.randrange(0, 4 * 3600))
        yield LedgerRow(
            request_id=f"req_{i:010d}", provider=provider, model=model,
            status="ok" if rng.random() < 0.97 else "error", ts=min(ts, END - timedelta(seconds=1)),
            key_id=session["key_id"], team=session["team"], persona=session["persona"], run_id=session["run_id"],
            session_id=session["session_id"], input_tokens=rng.randrange(50, 5000), output_tokens=rng.randrange(10, 800),
            cost_usd=rng.randrange(1, 20000) / 1e6, latency_ms=rng.uniform(200, 9000),
        )


def seed(engine: Any, n: int) -> float:
    ledger = Ledger(engine)
    started = time.perf_counter()
    batch: list[tuple[Any, ...]] = []
    for row in rows(n):
        batch.append(tuple(getattr(row, name) for name in ROW_FIELDS))
        if len(batch) == 5000:
            ledger._insert(batch)
            batch = []
    if batch:
        ledger._insert(batch)
    ledger._drop_connection()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def queries(engine: Any) -> list[tuple[str, float]]:
    ledger = Ledger(engine)
    last30 = END - timedelta(days=30)
    t = ledger_table.c

    def raw_by_persona() -> Any:
        with engine.connect() as conn:
            return conn.execute(sa.select(t.persona, sa.func.sum(t.cost_usd), sa.func.count())
                                .group_by(t.persona)).all()

    def overview(where: dict[str, str] | None = None) -> Any:
        """What ``GET /ui/api/overview`` reads (14 days, master or one key)."""
        since = END - timedelta(days=14)
        tops = ("key", "team", "session") if where is None else ("session",)
        return (ledger.series_sync("persona", since=since, until=END, where=where),
                ledger.costs_sync(None, since=since, until=END, where=where),
                [ledger.costs_sync(by, since=since, until=END, where=where) for by in tops],
                ledger.recent_sync(25, where=where))

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("/costs (total, all time)", lambda: ledger.costs_sync()),
        ("/costs?by=persona", lambda: ledger.costs_sync("persona")),
        ("/costs?by=day&since=30 days ago", lambda: ledger.costs_sync("day", since=last30)),
        ("/costs?by=session (last 30 days)", lambda: ledger.costs_sync("session", since=last30)),
        ("/costs?by=model, since/until to the second", lambda: ledger.costs_sync(
            "model", since=last30 + timedelta(hours=7, minutes=13), until=END - timedelta(hours=5))),
        ("/costs?by=day for one virtual key", lambda: ledger.costs_sync("day", where={"key": "key_0042"})),
        ("/costs for one virtual key, since/until to the second", lambda: ledger.costs_sync(
            None, since=last30 + timedelta(hours=7, minutes=13), until=END - timedelta(hours=5),
            where={"key": "key_0042"})),
        ("/costs?by=model for one persona, since/until to the second", lambda: ledger.costs_sync(
            "model", since=last30 + timedelta(hours=7, minutes=13), until=END - timedelta(hours=5),
            where={"persona": "persona-07"})),
        ("dashboard series by provider (14 days)", lambda: ledger.series_sync(
            "provider", since=END - timedelta(days=14), until=END)),
        ("dashboard recent requests (25)", lambda: ledger.recent_sync(25)),
        ("dashboard recent requests of one key", lambda: ledger.recent_sync(25, where={"key": "key_0042"})),
        ("/ui/api/overview, master key (all its queries)", lambda: overview()),
        ("/ui/api/overview, one virtual key", lambda: overview({"key": "key_0042"})),
        ("budget spent (persona, this month)", lambda: ledger.spent_sync("persona", "persona-07", END.replace(day=1))),
        ("spent by one team since a time of day (3 days)", lambda: ledger.spent_sync(
            "team", "team-03", END - timedelta(days=3, hours=5, minutes=30))),
        ("for comparison: raw full scan by persona", raw_by_persona),
    ]
    return [(name, timed(fn)) for name, fn in cases]


def sqlite_engine(work: Path) -> Any:
    return create_engine_from_url(f"sqlite:///{work / 'ledger.db'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ep-ledger-bench-") as tmp:
        for name in args.databases.split(","):
            if name == "sqlite":
                engine = sqlite_engine(Path(tmp))
                migrate(engine)
                notes.append(f"sqlite: seeded {args.rows:,} rows in {seed(engine, args.rows):.1f} s")
                results[name] = queries(engine)
                with engine.connect() as conn:
                    daily = conn.execute(sa.text("SELECT count(*) FROM ledger_daily")).scalar_one()
                notes.append(f"sqlite: roll-up rows {daily:,}")
                engine.dispose()
            elif name == "postgres":
                from tests.servers import postgres_server

                with postgres_server() as server:
                    engine = create_engine_from_url(server.url)
                    migrate(engine)
                    notes.append(f"postgres: seeded {args.rows:,} rows in {seed(engine, args.rows):.1f} s")
                    results[name] = queries(engine)
                    engine.dispose()
    names = list(results)
    print(f"Ledger with {args.rows:,} rows: median of 5 runs, milliseconds\n")
    print("| query | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for i, (query, _) in enumerate(next(iter(results.values()))):
        print(f"| {query} | " + " | ".join(f"{results[n][i][1]:.1f}" for n in names) + " |")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
