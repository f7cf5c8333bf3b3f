"""Run the packaged alembic migrations programmatically (start-up, tests, CLI).

Several gateway processes may start at once on one database, so the upgrade is serialised: a
PostgreSQL advisory lock, or an exclusive file lock next to a SQLite file. The loser then finds the
schema already current and does nothing.

Alembic (with mako and pygments behind it) is a fifth of a serving process's memory, so it is only
imported when there is something to upgrade: one ``SELECT`` on ``alembic_version`` against
:data:`HEAD` says whether the schema is already current (a test keeps :data:`HEAD` equal to the
newest script's revision). ``ep serve`` upgrades in a short-lived child before it starts serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .file_lock import beside_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0006_ledger_indexes"  # the newest revision under migrations/versions
_PG_LOCK_ID = 0x45505F4D4947  # arbitrary constant shared by every process of this product


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def is_current(engine: Engine) -> bool:
    """Whether the schema behind ``engine`` is at :data:`HEAD` (False when it has none yet)."""
    try:
        with engine.connect() as conn:
            versions = {row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    except sa.exc.DBAPIError:  # no alembic_version table: a new database
        return False
    return versions == {HEAD}


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (idempotent, safe across processes).

    The schema is checked again once the lock is held: a process that waited while another upgraded
    finds it current and never imports alembic."""
    to_head = revision in ("head", HEAD)
    if to_head and is_current(engine):
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            conn.commit()
            try:
                if not (to_head and is_current(engine)):
                    _upgrade(conn, revision)
                conn.commit()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                conn.commit()
        return
    lock = beside_sqlite(engine, "migrate-lock")
    try:
        with lock:
            if to_head and is_current(engine):
                return
            with engine.begin() as conn:
                _upgrade(conn, revision)
    finally:
        lock.close()


def _upgrade(conn: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_config(conn), revision)
