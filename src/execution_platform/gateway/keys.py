"""Virtual keys as the gateway sees them: a small protocol over whatever store holds them.

The store keeps only a hash of each secret. The gateway hashes what a client presents and looks the
hash up; the in-memory store below serves tests and key-less setups, the SQL repository in
``execution_platform.storage.keys`` serves real deployments.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

KEY_PREFIX = "ep-"


def hash_key(secret: str) -> str:
    """SHA-256 hex: keys are high-entropy random strings, so a fast hash is the right tool."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(slots=True)
class KeyRecord:
    """The stored fields of a virtual key (never the secret)."""

    id: str
    name: str | None = None
    models: list[str] = field(default_factory=list)
    personas: list[str] = field(default_factory=list)
    team: str | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    created_at: float = 0.0
    revoked: bool = False
    scopes: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return asdict(self)


class KeyStore(Protocol):
    """What the gateway needs from a key repository."""

    def create(self, **fields: Any) -> tuple[KeyRecord, str]: ...

    def list(self) -> list[KeyRecord]: ...

    def get_by_hash(self, key_hash: str) -> KeyRecord | None: ...

    def revoke(self, key_id: str) -> bool: ...


class MemoryKeyStore:
    """Process-local store, hashed like the real one."""

    def __init__(self) -> None:
        self._by_hash: dict[str, KeyRecord] = {}

    def create(self, **fields: Any) -> tuple[KeyRecord, str]:
        secret = new_secret()
        record = KeyRecord(id="key_" + uuid.uuid4().hex[:16], created_at=time.time(), **fields)
        self._by_hash[hash_key(secret)] = record
        return record, secret

    def list(self) -> list[KeyRecord]:
        return list(self._by_hash.values())

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        return self._by_hash.get(key_hash)

    def revoke(self, key_id: str) -> bool:
        for record in self._by_hash.values():
            if record.id == key_id and not record.revoked:
                record.revoked = True
                return True
        return False
