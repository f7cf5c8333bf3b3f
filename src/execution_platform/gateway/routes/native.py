"""Native surface: ``/chat`` in the canonical model, ``/health`` and ``/capabilities``."""

from __future__ import annotations

import importlib.util
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...codecs.sse import frame
from ...errors import EPError
from ...model import ChatRequest, ChatResponse, StreamEvent
from ..calls import capabilities, principal_of
from ..responses import error_responses, json_body, json_response, sse_and_json
from . import _chat
from ._catalog import configured_providers, model_ids

router = APIRouter(tags=["Native"])

_NATIVE_REQUEST = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
_NATIVE_RESPONSE = ChatResponse.model_json_schema(ref_template="#/components/schemas/{model}")
_NATIVE_DEFS = {**_NATIVE_REQUEST.pop("$defs", {}), **_NATIVE_RESPONSE.pop("$defs", {})}
_NATIVE_REQUEST["properties"]["stream"] = {"type": "boolean", "description": "answer with SSE of canonical events"}


def native_components() -> dict[str, Any]:
    """Schemas referenced by the native request/response, to merge into the OpenAPI document."""
    return {**_NATIVE_DEFS, "ChatRequest": _NATIVE_REQUEST, "ChatResponse": _NATIVE_RESPONSE}


def _decode(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest.model_validate(body)


def _dump(response: ChatResponse) -> dict[str, Any]:
    return response.model_dump(mode="json")


def _encode(event: StreamEvent) -> bytes:
    return frame(event.model_dump(mode="json"), event=event.type)


def _error_frame(err: EPError) -> bytes:
    body = {"type": "error", "error_type": err.type, "message": err.message, "retryable": err.retryable}
    return frame(body, event="error")


@router.post(
    "/chat",
    openapi_extra=json_body({"$ref": "#/components/schemas/ChatRequest"}),
    responses={**sse_and_json({"$ref": "#/components/schemas/ChatResponse"}), **error_responses()},
    summary="Chat in the canonical model; SSE of canonical events with stream=true",
)
async def chat(request: Request) -> Response:
    gw, req, streaming, _ = await _chat.read_chat(request, _decode)
    if not streaming:
        return await _chat.answer(gw, req, _dump)
    return await _chat.stream(gw, req, encode=_encode, trailer=lambda: b"", on_error=_error_frame)


HEALTH = {
    "type": "object",
    "required": ["status", "providers"],
    "properties": {
        "status": {"const": "ok"},
        "providers": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}


@router.get(
    "/health",
    responses={200: {"description": "Liveness and configured providers",
                     "content": {"application/json": {"schema": HEALTH}}}},
    summary="Liveness and which providers have a key",
)
async def health(request: Request) -> Response:
    gw = _chat.gateway(request)
    providers = {name: {"configured": ok} for name, ok in configured_providers(gw.settings, gw.config).items()}
    providers["claude_agent"] = {"configured": importlib.util.find_spec("claude_agent_sdk") is not None}
    return json_response({"status": "ok", "providers": providers})


@router.get(
    "/capabilities",
    responses={200: {"description": "Capabilities per provider/model",
                     "content": {"application/json": {"schema": {"type": "object"}}}},
               **error_responses(statuses=(401, 404))},
    summary="Capabilities per provider/model",
)
async def list_capabilities(
    request: Request,
    model: str | None = Query(None, description="one provider/model; default: every configured model"),
) -> Response:
    gw = _chat.gateway(request)
    principal = principal_of(request)
    names = [model] if model else [m for m, _ in model_ids(gw) if "/" in m and not m.startswith("persona:")]
    result: dict[str, Any] = {}
    for name in names:
        if model:
            principal.require_model(name)
        elif not principal.allows(name):
            continue
        caps = capabilities(gw, name)
        result[name] = caps.model_dump() if caps is not None else None
    return json_response({"providers": configured_providers(gw.settings, gw.config), "models": result})
