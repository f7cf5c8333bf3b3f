"""Who is calling: the master key, a virtual key, or nobody (open loopback mode).

Lookups are cached briefly by hash because every request pays for them; revocation through this
process clears the cache at once, other workers see it within ``ttl`` seconds.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import AuthenticationError, PermissionDeniedError
from ..model.address import parse_address
from ..storage.keys import KeyStore, VirtualKey, hash_key


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["master", "virtual", "open"]
    key_id: str | None = None
    models: tuple[str, ...] = ()
    personas: tuple[str, ...] = ()
    team: str | None = None
    budgets: tuple[Any, ...] = ()  # money.budgets.Budget of the key, built once per lookup
    limits: tuple[Any, ...] = ()  # money.ratelimit.RateLimit of the key (counted once per request)
    scopes: tuple[str, ...] = ()  # extra rights of a virtual key, e.g. "metrics"

    @property
    def is_admin(self) -> bool:
        return self.kind != "virtual"

    def has_scope(self, scope: str) -> bool:
        """The master key (and open loopback mode) has every right; a virtual key only those it was given."""
        return self.kind != "virtual" or scope in self.scopes

    def allows_persona(self, persona: str) -> bool:
        """Whether spend may be booked to this persona (same rule as ``persona:NAME`` addressing)."""
        return self.kind != "virtual" or not (self.models or self.personas) or persona in self.personas

    def allows(self, model: str) -> bool:
        """Unrestricted keys may use anything; a key with lists may use only what they name."""
        if self.kind != "virtual" or not (self.models or self.personas):
            return True
        persona = parse_address(model).persona
        if persona is not None:
            return persona in self.personas
        return model in self.models

    def require_model(self, model: str) -> None:
        if not self.allows(model):
            raise PermissionDeniedError(f"this key may not use '{model}'", code="model_not_allowed", param="model")


OPEN = Principal("open")
MASTER = Principal("master")


class Authenticator:
    """Resolves the presented secret to a :class:`Principal`."""

    def __init__(self, master_key: str | None, store: KeyStore, *, ttl: float = 2.0, max_cache: int = 4096) -> None:
        self.master_key = master_key
        self.store = store
        self.ttl = ttl
        self._max_cache = max_cache
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def forget(self) -> None:
        self._cache.clear()

    def authenticate(self, secret: str | None) -> Principal:
        if self.master_key is None:
            # Open mode (loopback only): a recognised virtual key still scopes and attributes the call.
            found = self._lookup(secret) if secret else None
            return found or OPEN
        if not secret:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer KEY', 'x-api-key: KEY' or 'x-goog-api-key: KEY'")
        if hmac.compare_digest(secret.encode(), self.master_key.encode()):
            return MASTER
        found = self._lookup(secret)
        if found is None:
            raise AuthenticationError("invalid API key")
        return found

    def _lookup(self, secret: str) -> Principal | None:
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = self.store.get_by_hash(digest)
        principal = None if record is None or record.revoked else to_principal(record)
        if len(self._cache) >= self._max_cache:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl, principal)
        return principal


def to_principal(record: VirtualKey) -> Principal:
    from .money import key_budgets, key_limits

    return Principal(
        "virtual",
        key_id=record.id,
        models=tuple(record.models or ()),
        personas=tuple(record.personas or ()),
        team=record.team,
        budgets=key_budgets(record.id, record.budget_usd, record.budget_period),
        limits=key_limits(record.id, record.rpm, record.tpm),
        scopes=tuple(record.scopes or ()),
    )


def presented_secret(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> str | None:
    """``Authorization: Bearer K``, ``x-api-key: K`` or Google's ``x-goog-api-key: K`` from raw ASGI
    headers; failing those, Google's ``?key=K`` query parameter (pass ``query`` on Gemini routes only)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in (b"x-api-key", b"x-goog-api-key") and value:
            return value.decode("latin-1").strip()
    if query and b"key=" in query:
        from urllib.parse import parse_qs

        keys = parse_qs(query.decode("latin-1")).get("key")
        if keys and keys[0].strip():
            return keys[0].strip()
    return None
