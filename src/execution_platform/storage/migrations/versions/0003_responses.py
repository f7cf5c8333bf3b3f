"""Stored Responses API results (``previous_response_id``, ``GET``/``DELETE /v1/responses/{id}``).

Revision ID: 0003_responses
Revises: 0002_cache_write_tokens
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_responses"
down_revision = "0002_cache_write_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("conversation", sa.JSON, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
    )
    op.create_index("ix_responses_key", "responses", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_responses_key", table_name="responses")
    op.drop_table("responses")
