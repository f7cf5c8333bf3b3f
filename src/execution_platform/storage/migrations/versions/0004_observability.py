"""Observability: a session column on the ledger, indexes for run/session and the daily roll-up.

The roll-up is back-filled from the rows already in the ledger, so totals stay exact across the upgrade.

Revision ID: 0004_observability
Revises: 0003_responses
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_observability"
down_revision = "0003_responses"
branch_labels = None
depends_on = None

DIMENSIONS = ("key_id", "team", "persona", "run_id", "session_id", "provider", "model", "deployment", "status")
SIZES = {"key_id": 64, "provider": 64, "model": 256, "status": 16}


def upgrade() -> None:
    op.add_column("ledger", sa.Column("session_id", sa.String(128)))
    op.create_index("ix_ledger_run_ts", "ledger", ["run_id", "ts"])
    op.create_index("ix_ledger_session_ts", "ledger", ["session_id", "ts"])
    op.create_table(
        "ledger_daily",
        sa.Column("day", sa.String(10), nullable=False),
        *(sa.Column(name, sa.String(SIZES.get(name, 128)), nullable=False) for name in DIMENSIONS),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.UniqueConstraint("day", *DIMENSIONS, name="uq_ledger_daily"),
    )
    op.create_index("ix_ledger_daily_key_day", "ledger_daily", ["key_id", "day"])
    day = "substr(CAST(ts AS TEXT), 1, 10)" if op.get_bind().dialect.name == "sqlite" else "to_char(ts, 'YYYY-MM-DD')"
    dims = ", ".join(f"coalesce({name}, '')" for name in DIMENSIONS)
    op.execute(
        f"INSERT INTO ledger_daily (day, {', '.join(DIMENSIONS)}, requests, input_tokens, output_tokens, "
        "cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd) "
        f"SELECT {day}, {dims}, count(*), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), "
        f"sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd) FROM ledger GROUP BY {day}, {dims}"
    )


def downgrade() -> None:
    op.drop_table("ledger_daily")
    op.drop_index("ix_ledger_session_ts", "ledger")
    op.drop_index("ix_ledger_run_ts", "ledger")
    op.drop_column("ledger", "session_id")
