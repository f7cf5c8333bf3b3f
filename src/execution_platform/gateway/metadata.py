"""Request metadata (run, team, session, persona) from headers and the native body: bounded and scoped.

These values end up in the ledger, in metrics labels and in budget lookups, so they are held to a
short printable-ASCII form (a 200 000-character run id must be a 400, not a ledger row), and a persona
named only for attribution must be one the key may use, or spend could be booked against a budget
the caller has no right to touch.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers

from ..errors import InvalidRequestError, PermissionDeniedError
from ..model import RequestMetadata
from .auth import Principal

MAX_CHARS = 128
MAX_TAGS = 32
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
HEADERS = {"X-EP-Run-Id": "run_id", "X-EP-Team": "team", "X-EP-Session-Id": "session_id"}


def checked(value: str, where: str) -> str:
    """``value`` when it is 1–128 printable ASCII characters; else a 400 naming ``where``."""
    if len(value) > MAX_CHARS or not _PRINTABLE.fullmatch(value):
        raise InvalidRequestError(
            f"'{where}' must be 1 to {MAX_CHARS} printable ASCII characters", param=where, code="invalid_metadata"
        )
    return value


def header(headers: Headers, name: str) -> str | None:
    """One metadata header (``X-EP-Run-Id`` …), checked, or None when absent or empty."""
    value = headers.get(name)
    return checked(value, name) if value else None


def check_persona_header(headers: Headers) -> str | None:
    """``X-EP-Persona``, bounded like the other metadata headers (its scope is checked as a model)."""
    return header(headers, "X-EP-Persona")


def apply(meta: RequestMetadata, headers: Headers, principal: Principal) -> None:
    """Check the body's metadata, overlay the headers, and hold the persona to the key's scope.

    A key with a team keeps it: ``X-EP-Team`` (or ``metadata.team``) cannot move its spend to another
    team's budget; it is ignored for such a key rather than refused, so a shared client config that
    always sends the header keeps working.
    """
    for name in ("persona", "run_id", "team", "session_id"):
        value = getattr(meta, name)
        if value is not None:
            checked(value, f"metadata.{name}")
    if len(meta.tags) > MAX_TAGS:
        raise InvalidRequestError(f"'metadata.tags' holds at most {MAX_TAGS} entries", param="metadata.tags")
    for tag, value in meta.tags.items():
        checked(tag, "metadata.tags")
        checked(value, f"metadata.tags.{tag[:MAX_CHARS]}")
    for name, field in HEADERS.items():
        value = header(headers, name)
        if value:
            setattr(meta, field, value)
    if principal.team:
        meta.team = principal.team
    if meta.persona is not None and not principal.allows_persona(meta.persona):
        raise PermissionDeniedError(
            f"this key may not use persona '{meta.persona}'", code="persona_not_allowed", param="metadata.persona"
        )
