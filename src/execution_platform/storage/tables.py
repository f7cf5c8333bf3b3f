"""Table definitions (SQLAlchemy Core). The migrations in ``migrations/versions`` create exactly these.

Times are naive UTC ``DateTime`` so SQLite and PostgreSQL compare and group them the same way.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("ts", sa.DateTime, nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("team", sa.String(128)),
    sa.Column("persona", sa.String(128)),
    sa.Column("run_id", sa.String(128)),
    sa.Column("session_id", sa.String(128)),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("deployment", sa.String(128)),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("latency_ms", sa.Float),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_type", sa.String(64)),
    sa.Index("ix_ledger_ts", "ts"),
)
# Every index is one more B-tree page that each ledger commit dirties, writes to the WAL and checksums,
# so the raw rows carry only what their readers need (migration 0006). Spend by any attribution comes
# from ``ledger_daily``; raw rows are read by time (the partial days at the edges of a ``/costs`` range,
# retention, the dashboard's latest rows), and by key within a time range (a virtual key's own
# ``/costs`` and dashboard). The key index is partial: a row without a key (the master key, an open
# gateway) is never asked for by key, so it costs no index entry; ``key_id = ?`` implies ``IS NOT
# NULL``, which lets SQLite and PostgreSQL both use it. A filter on persona, team, run or session over
# a partial day reads that day's rows through ``ix_ledger_ts``.
#
# The predicate is declared here for SQLite only: naming ``postgresql_where`` at import would load
# SQLAlchemy's PostgreSQL dialect (2 MB resident) into every embedded gateway that never talks to one.
# ``storage.engine`` declares it for PostgreSQL (:func:`declare_for_dialect`) when it makes such an engine.
_KEYED = ledger.c.key_id.is_not(None)
ix_ledger_key_ts = sa.Index("ix_ledger_key_ts", ledger.c.key_id, ledger.c.ts, sqlite_where=_KEYED)


def declare_for_dialect(name: str) -> None:
    """Declare the partial indexes' predicate for dialect ``name`` too (idempotent)."""
    if name == "postgresql":
        ix_ledger_key_ts.dialect_kwargs["postgresql_where"] = _KEYED

# Dimensions of the daily roll-up, in its unique key's order. Stored as '' rather than NULL so the
# unique key (and ``ON CONFLICT``) matches rows whose attribution is missing.
ROLLUP_DIMENSIONS = ("day", "key_id", "team", "persona", "run_id", "session_id", "provider", "model",
                     "deployment", "status")
ROLLUP_MEASURES = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                   "reasoning_tokens", "cost_usd")

# One row per day and attribution: what ``/costs`` and the dashboard read, so they stay fast at
# millions of ledger rows and stay exact after ``ledger.retention_days`` prunes raw rows. Maintained
# in the same transaction as the ledger inserts.
ledger_daily = sa.Table(
    "ledger_daily",
    metadata,
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("team", sa.String(128), nullable=False),
    sa.Column("persona", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=False),
    sa.Column("session_id", sa.String(128), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_input_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.UniqueConstraint(*ROLLUP_DIMENSIONS, name="uq_ledger_daily"),
    sa.Index("ix_ledger_daily_key_day", "key_id", "day"),
)

virtual_keys = sa.Table(
    "virtual_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256)),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_prefix", sa.String(32), nullable=False),
    sa.Column("models", sa.JSON),
    sa.Column("personas", sa.JSON),
    sa.Column("team", sa.String(128)),
    sa.Column("budget_usd", sa.Float),
    sa.Column("budget_period", sa.String(16)),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("scopes", sa.JSON),  # extra rights, e.g. ["metrics"] (migration 0002_key_scopes)
)

# Stored Responses API results (``store: true``): the object ``GET /v1/responses/{id}`` returns and the
# canonical conversation a later ``previous_response_id`` continues. ``key_id`` scopes visibility.
responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("conversation", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Index("ix_responses_key", "key_id"),
)
