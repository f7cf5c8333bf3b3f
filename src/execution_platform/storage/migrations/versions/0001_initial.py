"""Initial schema: ledger and virtual_keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team", sa.String(128)),
        sa.Column("persona", sa.String(128)),
        sa.Column("run_id", sa.String(128)),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("deployment", sa.String(128)),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_input_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(64)),
    )
    op.create_index("ix_ledger_ts", "ledger", ["ts"])
    op.create_index("ix_ledger_request", "ledger", ["request_id"])
    op.create_index("ix_ledger_key_ts", "ledger", ["key_id", "ts"])
    op.create_index("ix_ledger_persona_ts", "ledger", ["persona", "ts"])
    op.create_index("ix_ledger_team_ts", "ledger", ["team", "ts"])
    op.create_table(
        "virtual_keys",
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
    )


def downgrade() -> None:
    op.drop_table("virtual_keys")
    op.drop_table("ledger")
