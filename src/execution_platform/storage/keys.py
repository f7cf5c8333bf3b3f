"""Virtual keys: the one record type, hash and prefix, and the stores the gateway and ``ep keys`` use.

Only a SHA-256 hash of a key is stored, plus a short prefix so humans can tell keys apart in lists;
the secret is returned once by ``create`` and can never be read back. A lookup hashes the whole
secret the client presents, whatever it starts with, so keys issued under an older prefix (``ep-``)
keep working after the prefix became ``sk-ep-``.

:class:`KeyRepository` (SQL) serves real deployments; :class:`MemoryKeyStore` serves tests and
key-less setups. Both build their records with :func:`new_key`, so both apply the same checks.
Methods are synchronous (short single-row statements).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .tables import virtual_keys

KEY_PREFIX = "sk-ep-"
_DISPLAY_CHARS = 12
BUDGET_PERIODS = ("day", "week", "month", "total")
SCOPES = ("metrics",)  # rights beyond model calls a virtual key may be given


def hash_key(secret: str) -> str:
    """The stored form of a key: SHA-256 hex. Keys are high-entropy random strings, so a fast hash
    is the right tool (a slow password hash would only tax every request)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class VirtualKey:
    """A stored key without its secret: the single record type of the key stores, the admin API and
    ``ep keys``."""

    id: str
    key_hash: str
    key_prefix: str
    name: str | None = None
    models: list[str] | None = None
    personas: list[str] | None = None
    team: str | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    created_at: datetime = field(default_factory=_now)
    revoked_at: datetime | None = None
    scopes: list[str] | None = None

    def __post_init__(self) -> None:
        self.models = list(self.models or [])  # empty = no restriction
        self.personas = list(self.personas or [])
        self.scopes = list(self.scopes or [])

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (never contains the secret; the hash is omitted too)."""
        data = asdict(self)
        data.pop("key_hash")
        data["created_at"] = self.created_at.isoformat() + "Z"
        data["revoked_at"] = self.revoked_at.isoformat() + "Z" if self.revoked_at else None
        data["revoked"] = self.revoked
        return data


def new_key(
    *,
    name: str | None = None,
    models: list[str] | None = None,
    personas: list[str] | None = None,
    team: str | None = None,
    budget_usd: float | None = None,
    budget_period: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    scopes: list[str] | None = None,
) -> tuple[VirtualKey, str]:
    """A checked new record and its secret (not yet stored); ``ValueError`` names a bad field."""
    if budget_period is not None and budget_period not in BUDGET_PERIODS:
        raise ValueError(f"budget_period must be one of {', '.join(BUDGET_PERIODS)}")
    if budget_usd is not None and budget_usd < 0:
        raise ValueError("budget_usd must not be negative")
    unknown = sorted(set(scopes or ()) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    secret = new_secret()
    key = VirtualKey(
        id="key_" + secrets.token_hex(8),
        key_hash=hash_key(secret),
        key_prefix=secret[:_DISPLAY_CHARS],
        name=name,
        models=models,
        personas=personas,
        team=team,
        budget_usd=budget_usd,
        budget_period=(budget_period or "total") if budget_usd is not None else budget_period,
        rpm=rpm,
        tpm=tpm,
        scopes=sorted(set(scopes or ())),
    )
    return key, secret


class KeyStore(Protocol):
    """What the gateway and the CLI need from a key store."""

    def create(self, **fields: Any) -> tuple[VirtualKey, str]: ...

    def list(self) -> list[VirtualKey]: ...

    def get_by_hash(self, key_hash: str) -> VirtualKey | None: ...

    def revoke(self, key_id: str) -> bool: ...


class KeyRepository:
    """Create, list, look up and revoke virtual keys in the ``virtual_keys`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, **fields: Any) -> tuple[VirtualKey, str]:
        """Store a new key (fields as :func:`new_key`); returns it and its secret (shown once, never stored)."""
        key, secret = new_key(**fields)
        with self.engine.begin() as conn:
            conn.execute(virtual_keys.insert().values(**asdict(key)))
        return key, secret

    def list(self, *, include_revoked: bool = True) -> list[VirtualKey]:
        query = sa.select(virtual_keys).order_by(virtual_keys.c.created_at, virtual_keys.c.id)
        if not include_revoked:
            query = query.where(virtual_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [VirtualKey(**row._asdict()) for row in conn.execute(query)]

    def get(self, key_id: str) -> VirtualKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(virtual_keys).where(virtual_keys.c.id == key_id)).first()
        return VirtualKey(**row._asdict()) if row else None

    def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        """The key with this hash, revoked or not (callers check :attr:`VirtualKey.revoked`)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(virtual_keys).where(virtual_keys.c.key_hash == key_hash)).first()
        return VirtualKey(**row._asdict()) if row else None

    def get_by_secret(self, secret: str) -> VirtualKey | None:
        return self.get_by_hash(hash_key(secret))

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when no active key has this id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                virtual_keys.update()
                .where(virtual_keys.c.id == key_id, virtual_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return result.rowcount > 0


def open_key_repository(database_url: str) -> KeyRepository:
    """The SQL repository on ``database_url``, its schema migrated first (start-up and ``ep keys``)."""
    from .engine import create_engine_from_url
    from .migrate import migrate

    engine = create_engine_from_url(database_url)
    migrate(engine)
    return KeyRepository(engine)


class MemoryKeyStore:
    """Process-local store with the same records and checks as :class:`KeyRepository`."""

    def __init__(self) -> None:
        self._by_hash: dict[str, VirtualKey] = {}

    def create(self, **fields: Any) -> tuple[VirtualKey, str]:
        key, secret = new_key(**fields)
        self._by_hash[key.key_hash] = key
        return key, secret

    def list(self) -> list[VirtualKey]:
        return list(self._by_hash.values())

    def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        return self._by_hash.get(key_hash)

    def revoke(self, key_id: str) -> bool:
        for key in self._by_hash.values():
            if key.id == key_id and not key.revoked:
                key.revoked_at = _now()
                return True
        return False
