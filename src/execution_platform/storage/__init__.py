"""Persistence: one SQLAlchemy engine (SQLite by default, PostgreSQL when configured), the tables, and
the alembic migrations that create them. Migrations ship inside the package and run at start-up, so a
fresh database and an old one both end up on the current schema without a separate deploy step.

Budget reservations are deliberately not stored here: they live in process memory or in Redis, where
they die with the process or expire by TTL, so none can outlive a crash.
"""

from .engine import create_engine_from_url, normalize_url
from .migrate import migrate
from .tables import ledger, metadata, virtual_keys

__all__ = [
    "create_engine_from_url",
    "ledger",
    "metadata",
    "migrate",
    "normalize_url",
    "virtual_keys",
]
