"""Open the SQL virtual-key repository for the gateway (schema migrated at start-up)."""

from __future__ import annotations

from typing import Any

from ..storage.keys import KeyRepository


def open_repository(settings: Any) -> KeyRepository:
    from ..storage import create_engine_from_url, migrate

    engine = create_engine_from_url(settings.resolved_database_url())
    migrate(engine)
    return KeyRepository(engine)
