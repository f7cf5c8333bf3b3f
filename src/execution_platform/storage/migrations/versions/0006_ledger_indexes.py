"""The ledger keeps only the indexes its readers use: ``ts``, and ``(key_id, ts)`` for rows with a key.

Each index costs every ledger commit a dirty page, a WAL frame and its checksum. Since the daily
roll-up (0004) answers spend by persona, team, run and session for whole days, those ``(column, ts)``
indexes only served partial days, which ``ix_ledger_ts`` narrows to a day's rows anyway; nothing reads
raw rows by ``request_id``. The key index becomes partial (``WHERE key_id IS NOT NULL``): queries only
ever ask for one key's rows.

Revision ID: 0006_ledger_indexes
Revises: 0005_key_scopes
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_ledger_indexes"
down_revision = "0005_key_scopes"
branch_labels = None
depends_on = None

DROPPED = {
    "ix_ledger_request": ["request_id"],
    "ix_ledger_persona_ts": ["persona", "ts"],
    "ix_ledger_team_ts": ["team", "ts"],
    "ix_ledger_run_ts": ["run_id", "ts"],
    "ix_ledger_session_ts": ["session_id", "ts"],
}
KEYED = sa.text("key_id IS NOT NULL")


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, "ledger")
    op.drop_index("ix_ledger_key_ts", "ledger")
    # Only the running dialect's keyword: naming another would import that dialect for nothing.
    dialect = op.get_bind().dialect.name
    where: dict[str, Any] = {f"{dialect}_where": KEYED} if dialect in ("sqlite", "postgresql") else {}
    op.create_index("ix_ledger_key_ts", "ledger", ["key_id", "ts"], **where)


def downgrade() -> None:
    op.drop_index("ix_ledger_key_ts", "ledger")
    op.create_index("ix_ledger_key_ts", "ledger", ["key_id", "ts"])
    for name, columns in DROPPED.items():
        op.create_index(name, "ledger", columns)
