"""Virtual-key management for the master key: ``POST/GET /admin/keys``, ``DELETE /admin/keys/{id}``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, get_type_hints

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from ...storage.keys import VirtualKey
from ..calls import principal_of
from ..responses import error_responses, json_response
from . import _chat

router = APIRouter(tags=["Admin"])
_INT32_MAX = 2**31 - 1
# Every field bounded to what its column holds (names 256, teams and personas 128 characters), so an
# odd value is a 400 from validation and never a database error.
_Model = Annotated[str, StringConstraints(min_length=1, max_length=256)]
_Persona = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class KeyCreate(BaseModel):
    """Fields of a new virtual key (snake_case, as ``ep keys create``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=256)
    models: list[_Model] = Field(default_factory=list, max_length=1000)
    personas: list[_Persona] = Field(default_factory=list, max_length=1000)
    team: str | None = Field(None, max_length=128)
    budget_usd: float | None = Field(None, ge=0, le=1e12, allow_inf_nan=False)
    budget_period: Literal["day", "week", "month", "total"] | None = None
    # Bounded to what the database columns hold (32-bit integers), so absurd values are a 400, not a 500.
    rpm: int | None = Field(None, ge=1, le=_INT32_MAX)
    tpm: int | None = Field(None, ge=1, le=_INT32_MAX)
    scopes: list[Literal["metrics"]] = Field(
        default_factory=list, max_length=8, description="extra rights: 'metrics' may read /metrics")


def _key_info_fields() -> dict[str, Any]:
    """The record's own fields (what :meth:`VirtualKey.to_dict` returns), so the published schema
    follows the store instead of a hand-kept copy: everything but the hash, plus ``revoked``."""
    hints = get_type_hints(VirtualKey)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(VirtualKey):
        if f.name == "key_hash":
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = (hints[f.name], ...) if required else (hints[f.name] | None, None)
    out["revoked"] = (bool, False)
    return out


# Built at import (response schemas only: the routes answer with ``VirtualKey.to_dict()`` directly).
KeyInfo = create_model("KeyInfo", **_key_info_fields())
KeyCreated = create_model("KeyCreated", __base__=KeyInfo, key=(str, Field(description="the secret; shown only once")))
KeyList = create_model("KeyList", data=(list[KeyInfo], ...))


def _require_admin(request: Request) -> None:
    if not principal_of(request).is_admin:
        raise PermissionDeniedError("only the master key manages keys")


_ADMIN_ERRORS = error_responses(statuses=(400, 401, 403))


@router.post("/admin/keys", response_model=KeyCreated, status_code=201, responses=_ADMIN_ERRORS,
             summary="Create a virtual key (the secret is returned once)")
async def create_key(request: Request, spec: KeyCreate) -> Response:
    _require_admin(request)
    gw = _chat.gateway(request)
    fields = spec.model_dump()
    fields["name"] = fields["name"] or None  # "" means no name, as an unset team means no team
    fields["team"] = fields["team"] or None
    try:
        record, secret = gw.keys.create(**fields)
    except ValueError as exc:  # the repository's own checks: a 400 like validation, never a 500
        raise InvalidRequestError(str(exc)) from None
    return json_response({**record.to_dict(), "key": secret}, status=201)


@router.get("/admin/keys", response_model=KeyList, responses=_ADMIN_ERRORS, summary="List virtual keys")
async def list_keys(request: Request) -> Response:
    _require_admin(request)
    gw = _chat.gateway(request)
    return json_response({"data": [r.to_dict() for r in gw.keys.list()]})


@router.delete("/admin/keys/{key_id}", response_model=KeyInfo,
               responses=error_responses(statuses=(401, 403, 404)), summary="Revoke a virtual key")
async def revoke_key(request: Request, key_id: str) -> Response:
    _require_admin(request)
    gw = _chat.gateway(request)
    if not gw.keys.revoke(key_id):
        raise NotFoundError(f"no active key '{key_id}'", code="key_not_found")
    gw.authenticator.forget()
    record = next((r for r in gw.keys.list() if r.id == key_id), None)
    return json_response(record.to_dict() if record is not None else {"id": key_id, "revoked": True})
