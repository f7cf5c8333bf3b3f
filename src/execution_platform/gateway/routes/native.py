"""Native surface: ``/chat`` in the canonical model, ``/health`` and ``/capabilities``."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...codecs.passthrough import check_provider_options
from ...codecs.sse import frame
from ...config.availability import configured_providers, local_available
from ...errors import EPError, InvalidRequestError, NotFoundError
from ...model import ChatRequest, ChatResponse, StreamEvent
from ...model.address import parse_address, persona_address
from ..calls import capabilities, principal_of
from ..responses import error_responses, json_body, json_response, sse_and_json
from . import _chat
from ._catalog import model_ids

router = APIRouter(tags=["Native"])

_NATIVE_REQUEST = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
_NATIVE_RESPONSE = ChatResponse.model_json_schema(ref_template="#/components/schemas/{model}")
_NATIVE_DEFS = {**_NATIVE_REQUEST.pop("$defs", {}), **_NATIVE_RESPONSE.pop("$defs", {})}
_NATIVE_REQUEST["properties"].pop("passthrough", None)  # filled by wire decoders, refused on /chat
_NATIVE_RESPONSE["properties"].pop("rate_limits", None)  # sent as headers, never in the body
_NATIVE_REQUEST["properties"]["stream"] = {"type": "boolean", "description": "answer with SSE of canonical events"}


def native_components() -> dict[str, Any]:
    """Schemas referenced by the native request/response, to merge into the OpenAPI document."""
    return {**_NATIVE_DEFS, "ChatRequest": _NATIVE_REQUEST, "ChatResponse": _NATIVE_RESPONSE}


def _decode(body: dict[str, Any]) -> ChatRequest:
    """Native bodies are canonical; their ``provider_options`` may add fields, never policy ones."""
    if body.get("passthrough") is not None:
        raise InvalidRequestError("'passthrough' is set by wire decoders; use provider_options", param="passthrough")
    options = body.get("provider_options")
    if isinstance(options, dict):
        check_provider_options(options)
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
    gw, req, payer, streaming, _ = await _chat.read_chat(request, _decode)
    if not streaming:
        return await _chat.answer(gw, req, payer, _dump)
    return await _chat.stream(gw, req, payer, encode=_encode, trailer=lambda: b"", on_error=_error_frame)


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
    providers["local"] = local_status(gw.settings)
    return json_response({"status": "ok", "providers": providers})


def local_status(settings: Any) -> dict[str, Any]:
    """The local model: available (a model file), and whether its engine runs now (it starts on first use)."""
    status: dict[str, Any] = {"configured": local_available(settings)}
    if "execution_platform.providers.local" in sys.modules:
        from ...providers.local_supervisor import engine_running

        status["running"] = engine_running()
    else:
        status["running"] = False
    return status


@router.head("/health", responses={200: {"description": "Alive (no body)"}}, summary="Liveness without a body",
             operation_id="health_head")
async def health_head() -> Response:
    """For load balancers and probes that send ``HEAD`` (the external contract: GET/HEAD ``/health``, no key)."""
    return Response(status_code=200, media_type="application/json")  # GET's headers, no body


@router.get(
    "/capabilities",
    responses={200: {"description": "Capabilities per provider/model, deployment and persona target",
                     "content": {"application/json": {"schema": {"type": "object"}}}},
               **error_responses(statuses=(401, 403, 404))},
    summary="Capabilities per provider/model (and per persona target with a config)",
)
async def list_capabilities(
    request: Request,
    model: str | None = Query(None, description="one address (provider/model, deployment or persona:NAME); "
                                                "default: everything configured"),
) -> Response:
    """With a config, the router's table (config overrides applied); without, the adapters' defaults."""
    gw = _chat.gateway(request)
    principal = principal_of(request)
    if model:
        principal.require_model(model)
    router = gw.client.router
    extra = [m for m, _ in model_ids(gw) if parse_address(m).kind in ("provider_model", "bare")]
    body: dict[str, Any] = {"providers": configured_providers(gw.settings, gw.config)}
    if router is None:
        names = [model] if model else [m for m in extra if principal.allows(m)]
        caps = {name: capabilities(gw, name) for name in names}
        body["models"] = {name: c.model_dump() if c is not None else None for name, c in caps.items()}
        return json_response(body)
    personas = router.config.personas
    name = parse_address(model).persona if model else None
    if name is not None:
        if name not in personas:
            raise NotFoundError(f"unknown persona '{name}'", code="persona_not_found", param="model")
        body.update(models={}, personas={name: _persona_entry(router, personas[name])})
        return json_response(body)
    if model:
        table = {model: router.capabilities(model)}
    else:
        table = {**{m: router.capabilities(m) for m in extra}, **router.capabilities_table()}
    body["models"] = {name: c.model_dump() for name, c in table.items() if principal.allows(name)}
    body["personas"] = {} if model else {
        name: _persona_entry(router, policy)
        for name, policy in personas.items() if principal.allows(persona_address(name))
    }
    return json_response(body)


def _persona_entry(router: Any, policy: Any) -> dict[str, Any]:
    """A persona's required capabilities and, per target in chain order, what that target can do."""
    return {
        "requires": list(policy.requires),
        "targets": [{"target": t.target, "capabilities": router.capabilities(t.target).model_dump()}
                    for t in policy.targets],
    }
