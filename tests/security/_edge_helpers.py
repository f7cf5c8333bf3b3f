"""What the security tests share: a gateway per test in front of the fakes, with SQL-stored keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from execution_platform.storage import create_engine_from_url, migrate
from execution_platform.storage.keys import KeyRepository

MASTER = "security-master-key-0123456789"
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_CHAT = {"model": "openai/gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def sql_keys(tmp_path: Path) -> tuple[KeyRepository, str]:
    """The key repository real deployments use (its own checks differ from the in-memory store's)."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = create_engine_from_url(url)
    migrate(engine)
    return KeyRepository(engine), url


def new_key(url: str, **fields: Any) -> str:
    created = httpx.post(url + "/admin/keys", headers=bearer(MASTER), json=fields)
    assert created.status_code == 201, created.text
    return created.json()["key"]
