"""Virtual keys carry scopes (e.g. ``metrics``: may read the gateway-wide ``/metrics``).

Revision ID: 0005_key_scopes
Revises: 0004_observability
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_key_scopes"
down_revision = "0004_observability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("virtual_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("virtual_keys") as batch:
        batch.drop_column("scopes")
