"""Model discovery: ``GET /v1/models`` and ``GET /v1/models/{id}`` in OpenAI's shape, or Anthropic's
when the request carries ``anthropic-version`` (the anthropic SDK always sends it).

Ids are gateway addresses (``openai/gpt-4o-mini``, a deployment, ``persona:NAME``), so the single-model
route takes the rest of the path. What is listed comes from :func:`._catalog.visible_models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequestError, NotFoundError
from ..calls import principal_of
from ..responses import error_responses, json_response
from . import _chat
from ._catalog import ModelEntry, visible_models

router = APIRouter(tags=["Models"])

_OPENAI_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
_ANTHROPIC_MODEL = {
    "type": "object",
    "required": ["type", "id", "display_name", "created_at"],
    "properties": {
        "type": {"const": "model"},
        "id": {"type": "string"},
        "display_name": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
MODEL_LIST = {
    "oneOf": [
        {"type": "object", "required": ["object", "data"],
         "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _OPENAI_MODEL}}},
        {"type": "object", "required": ["data", "has_more", "first_id", "last_id"],
         "properties": {"data": {"type": "array", "items": _ANTHROPIC_MODEL}, "has_more": {"type": "boolean"},
                        "first_id": {"type": ["string", "null"]}, "last_id": {"type": ["string", "null"]}}},
    ]
}


def _anthropic(request: Request) -> bool:
    return "anthropic-version" in request.headers


def openai_model(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "model", "created": entry.created, "owned_by": entry.owned_by}


def anthropic_model(entry: ModelEntry) -> dict[str, Any]:
    created = datetime.fromtimestamp(entry.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": entry.id, "display_name": entry.display_name, "created_at": created}


def _index(ids: list[str], value: str, param: str) -> int:
    try:
        return ids.index(value)
    except ValueError:
        raise InvalidRequestError(f"{param} '{value}' is not a listed model", param=param) from None


def anthropic_page(
    entries: list[ModelEntry], limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """Anthropic's cursor pagination: ``limit`` entries after ``after_id`` or just before ``before_id``."""
    ids = [e.id for e in entries]
    if before_id is not None:
        end = _index(ids, before_id, "before_id")
        start = max(0, end - limit)
        page, has_more = entries[start:end], start > 0
    else:
        start = _index(ids, after_id, "after_id") + 1 if after_id is not None else 0
        page, has_more = entries[start : start + limit], start + limit < len(entries)
    return {
        "data": [anthropic_model(e) for e in page],
        "has_more": has_more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


@router.get(
    "/v1/models",
    responses={200: {"description": "Models this key may use (Anthropic's shape with anthropic-version)",
                     "content": {"application/json": {"schema": MODEL_LIST}}},
               **error_responses(statuses=(400, 401))},
    summary="List models (OpenAI wire format, or Anthropic's with an anthropic-version header)",
)
async def list_models(
    request: Request,
    limit: int = Query(20, ge=1, le=1000, description="Anthropic shape only: page size"),
    after_id: str | None = Query(None, description="Anthropic shape only: page after this id"),
    before_id: str | None = Query(None, description="Anthropic shape only: page before this id"),
) -> Response:
    from . import gemini

    if gemini.wants_gemini_list(request):  # google-genai with api_version v1 lists here too
        return await gemini.list_models(request)
    entries = visible_models(_chat.gateway(request), principal_of(request))
    if _anthropic(request):
        return json_response(anthropic_page(entries, limit, after_id, before_id))
    return json_response({"object": "list", "data": [openai_model(e) for e in entries]})


@router.get(
    "/v1/models/{model_id:path}",
    responses={200: {"description": "One model (Anthropic's shape with anthropic-version)",
                     "content": {"application/json": {"schema": {"oneOf": [_OPENAI_MODEL, _ANTHROPIC_MODEL]}}}},
               **error_responses(statuses=(401, 404))},
    summary="One model by id; ids contain '/' (openai/gpt-4o-mini)",
)
async def get_model(request: Request, model_id: str) -> Response:
    for entry in visible_models(_chat.gateway(request), principal_of(request)):
        if entry.id == model_id:
            return json_response(anthropic_model(entry) if _anthropic(request) else openai_model(entry))
    raise NotFoundError(f"The model '{model_id}' does not exist or is not available to this key",
                        code="model_not_found", param="model")
