"""Engine creation from a SQLAlchemy URL.

SQLite is tuned for many concurrent readers and one writer that must never lose a committed row:
``journal_mode=WAL`` (readers do not block the writer), ``busy_timeout`` (several processes on one file
wait instead of failing with "database is locked") and ``synchronous=FULL``. NORMAL would survive a
process crash (``kill -9``) but may lose the last commits on power loss; the ledger promises that a
request's row is committed before its response completes, and group commit amortises the extra fsync
over every row of a batch, so FULL costs little and keeps the promise.

``postgresql://`` URLs are mapped to the psycopg 3 driver (``postgresql+psycopg://``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from .tables import declare_for_dialect

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Map plain ``postgresql://`` / ``postgres://`` URLs to psycopg 3; leave everything else alone."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine_from_url(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas/driver described in the module docstring."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    engine = sa.create_engine(url, **kwargs)
    declare_for_dialect(engine.dialect.name)
    return engine
