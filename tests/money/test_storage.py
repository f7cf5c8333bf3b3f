"""Storage on a real private PostgreSQL and on SQLite: migrations, the ledger, virtual keys."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from execution_platform.money.budgets import Budget, InProcessBudgets
from execution_platform.money.ledger import Ledger, LedgerRow
from execution_platform.money.metering import CallContext, MeteredProvider
from execution_platform.storage import create_engine_from_url, migrate
from execution_platform.storage.file_lock import beside_sqlite
from execution_platform.storage.keys import KeyRepository, hash_key
from tests.money.conftest import request, scripted_upstream
from tests.servers import PostgresServer


@pytest.fixture
def pg_engine(pg_srv: PostgresServer) -> Iterator[Engine]:
    engine = create_engine_from_url(pg_srv.url)
    assert engine.dialect.driver == "psycopg"
    with engine.begin() as conn:  # a clean schema per test
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(create_engine_from_url(pg_srv.url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]  # concurrent start-ups
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    yield engine
    engine.dispose()


async def test_postgres_ledger_group_commit_and_costs(pg_engine: Engine) -> None:
    async with Ledger(pg_engine) as ledger:
        rows = [
            LedgerRow(request_id=f"r{i}", provider="openai", model="gpt-4o-mini", status="ok", cost_usd=0.01,
                      persona="p" if i % 2 else "q", ts=datetime(2026, 5, 1 + i % 3, 10), input_tokens=3)
            for i in range(120)
        ]
        await asyncio.gather(*(ledger.record(r) for r in rows))
        assert ledger.batches < 20
        result = await ledger.costs("day")
        assert result["requests"] == 120 and result["total_usd"] == pytest.approx(1.2)
        assert [(g["group"], g["requests"]) for g in result["groups"]] == [
            ("2026-05-01", 40), ("2026-05-02", 40), ("2026-05-03", 40)]
        assert (await ledger.costs("persona"))["groups"][0]["input_tokens"] == 180
        assert await ledger.spent("persona", "p", since=datetime(2026, 5, 2)) == pytest.approx(0.4)


async def test_postgres_metered_calls_and_budget_from_ledger(pg_engine: Engine) -> None:
    budget = Budget("key", "kpg", limit_usd=0.05)
    async with Ledger(pg_engine) as ledger:
        metered = MeteredProvider(scripted_upstream(name="anthropic"), ledger=ledger,
                                  budgets=InProcessBudgets(spent_loader=ledger.spent),
                                  context=lambda r: CallContext(budgets=[budget]))
        for _ in range(3):
            await metered.chat(request(model="claude-sonnet-4-5", key_id="kpg"))
        [group] = (await ledger.costs("key"))["groups"]
        assert group["group"] == "kpg" and group["requests"] == 3 and group["cost_usd"] > 0
        restarted = InProcessBudgets(spent_loader=ledger.spent)
        assert (await restarted.usage(budget))[0] == pytest.approx(group["cost_usd"])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_virtual_keys(backend: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    repo = KeyRepository(engine)
    key, secret = repo.create(name="ci", models=["openai/gpt-4o-mini"], personas=["coder"], team="t",
                              budget_usd=5.0, budget_period="day", rpm=10, tpm=1000)
    assert secret.startswith("sk-ep-") and key.key_prefix == secret[:12]
    assert key.key_hash == hash_key(secret) != secret
    found = repo.get_by_secret(secret)
    assert found is not None and found.id == key.id and found.models == ["openai/gpt-4o-mini"]
    assert found.personas == ["coder"] and found.budget_period == "day" and found.rpm == 10
    assert "key_hash" not in found.to_dict() and secret not in str(found.to_dict())
    assert repo.get_by_secret(secret + "x") is None
    other, _ = repo.create(name="other")
    assert [k.id for k in repo.list()] == [key.id, other.id]
    assert repo.revoke(key.id) and not repo.revoke(key.id) and not repo.revoke("nope")
    assert repo.get(key.id).revoked  # type: ignore[union-attr]
    assert [k.id for k in repo.list(include_revoked=False)] == [other.id]
    with pytest.raises(ValueError):
        repo.create(budget_usd=1, budget_period="fortnight")


def _where_text(options: dict[str, object]) -> str | None:
    """A reflected or declared partial index's predicate as comparable text (``None`` when total)."""
    clauses = [options[name] for name in ("sqlite_where", "postgresql_where") if options.get(name) is not None]
    if not clauses:
        return None
    clause = clauses[0]
    text = clause if isinstance(clause, str) else str(clause.compile(compile_kwargs={"literal_binds": True}))
    return " ".join(text.replace("(", " ").replace(")", " ").replace("ledger.", "").lower().split())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_create_exactly_the_declared_tables_and_indexes(backend: str, request: pytest.FixtureRequest) -> None:
    """The migrated schema is ``storage.tables``: no column, constraint or index differs (alembic's own
    comparison), and every index, partial ones included, has the declared columns and predicate."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from execution_platform.storage import metadata

    engine: Engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        declared = {index.name: ([c.name for c in index.columns], bool(index.unique), _where_text(index.dialect_kwargs))
                    for index in table.indexes}
        found = {index["name"]: (index["column_names"], bool(index["unique"]), _where_text(index.get("dialect_options", {})))
                 for index in inspector.get_indexes(table.name)
                 if not index.get("duplicates_constraint")}  # PostgreSQL's index behind a UNIQUE constraint
        assert found == declared, table.name
    assert declared_ledger_indexes() == {"ix_ledger_ts": None, "ix_ledger_key_ts": "key_id is not null"}


def declared_ledger_indexes() -> dict[str | None, str | None]:
    from execution_platform.storage import ledger

    return {index.name: _where_text(index.dialect_kwargs) for index in ledger.indexes}


def test_one_keys_raw_rows_are_read_through_the_partial_key_index(engine: Engine) -> None:
    """The key index covers only rows with a key; the queries that ask for one key's raw rows (a
    partial day of its ``/costs``, its latest rows) must still be planned on it, not on a scan."""
    ledger = Ledger(engine)
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FROM ledger " in statement and "key_id" in statement.split("WHERE", 1)[-1]:
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        ledger.costs_sync(None, since=datetime(2026, 5, 1, 10, 30), until=datetime(2026, 5, 3, 8), where={"key": "k1"})
        ledger.recent_sync(25, where={"key": "k1"})
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 3  # two partial days and the latest rows
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "ix_ledger_key_ts (key_id=?" in plan, (statement, plan)


def test_sqlite_engine_settings(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    migrate(engine)  # idempotent
    assert {"ledger", "virtual_keys"} <= set(sa.inspect(engine).get_table_names())


def test_head_constant_is_the_newest_migration_and_current_schemas_skip_alembic(tmp_path) -> None:
    """Start-up skips alembic when the schema is current, which relies on ``HEAD`` naming the newest
    script; a new migration that forgets to move ``HEAD`` fails here."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    migrate_module = importlib.import_module("execution_platform.storage.migrate")  # the package exports the function

    config = Config()
    config.set_main_option("script_location", str(migrate_module._MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [migrate_module.HEAD]

    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert not migrate_module.is_current(engine)
    migrate(engine, "0004_observability")  # an older schema is upgraded, not skipped
    assert not migrate_module.is_current(engine)
    migrate(engine)
    assert migrate_module.is_current(engine)
    assert "scopes" in {c["name"] for c in sa.inspect(engine).get_columns("virtual_keys")}


def test_a_process_that_waited_for_anothers_upgrade_does_not_load_alembic(tmp_path) -> None:
    """Several gateways starting on one fresh database: the one that waited for the lock finds the
    schema current once it holds it, and never imports alembic (a fifth of a serving process)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    migrate_module = importlib.import_module("execution_platform.storage.migrate")
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = create_engine_from_url(url)
    lock = f"{tmp_path / 'fresh.db'}.migrate-lock"
    code = (
        "import sys\n"
        "from execution_platform.storage import create_engine_from_url, migrate\n"
        f"migrate(create_engine_from_url({url!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    other_gateway = beside_sqlite(engine, "migrate-lock")
    with other_gateway:  # this process is "the other gateway", upgrading
        waiter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not any(os.path.realpath(fd) == os.path.realpath(lock)
                      for fd in (str(p) for p in Path(f"/proc/{waiter.pid}/fd").glob("*")) if os.path.exists(fd)):
            assert waiter.poll() is None and time.monotonic() < deadline, "the waiter never reached the lock"
            time.sleep(0.02)
        from alembic import command

        with engine.begin() as conn:
            command.upgrade(migrate_module._config(conn), "head")
    other_gateway.close()
    out, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0
    assert out.strip() == "[]"
    assert migrate_module.is_current(engine)
