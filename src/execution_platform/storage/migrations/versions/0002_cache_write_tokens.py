"""Ledger rows keep prompt-cache writes apart, as they keep cache reads (both have their own price).

Revision ID: 0002_cache_write_tokens
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_cache_write_tokens"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger", sa.Column("cache_write_tokens", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("ledger", "cache_write_tokens")
