"""Virtual keys: the repository the gateway and ``ep keys`` use.

Only a SHA-256 hash of a key is stored, plus a short prefix so humans can tell keys apart in lists;
the secret is returned once by :meth:`KeyRepository.create` and can never be read back. Methods are
synchronous (short single-row statements); async callers wrap them in ``asyncio.to_thread``, as the
``a*`` helpers do.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .tables import virtual_keys

KEY_PREFIX = "sk-ep-"
_DISPLAY_CHARS = 12
BUDGET_PERIODS = ("day", "week", "month", "total")
SCOPES = ("metrics",)  # rights beyond model calls a virtual key may be given


def hash_key(secret: str) -> str:
    """The stored form of a key (sha256 hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class VirtualKey:
    """A stored key without its secret."""

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

    def public(self) -> dict[str, Any]:
        """Same as :meth:`to_dict` (the name the gateway's key protocol uses)."""
        return self.to_dict()


class KeyRepository:
    """Create, list, look up and revoke virtual keys in the ``virtual_keys`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
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
        """Store a new key; returns it and its secret (shown to the user once, never stored)."""
        if budget_period is not None and budget_period not in BUDGET_PERIODS:
            raise ValueError(f"budget_period must be one of {', '.join(BUDGET_PERIODS)}")
        if budget_usd is not None and budget_usd < 0:
            raise ValueError("budget_usd must not be negative")
        unknown = sorted(set(scopes or ()) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
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

    async def aget_by_secret(self, secret: str) -> VirtualKey | None:
        return await asyncio.to_thread(self.get_by_secret, secret)

    async def acreate(self, **fields: Any) -> tuple[VirtualKey, str]:
        return await asyncio.to_thread(lambda: self.create(**fields))

    async def alist(self, *, include_revoked: bool = True) -> list[VirtualKey]:
        return await asyncio.to_thread(self.list, include_revoked=include_revoked)

    async def arevoke(self, key_id: str) -> bool:
        return await asyncio.to_thread(self.revoke, key_id)
