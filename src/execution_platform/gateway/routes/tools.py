"""``GET /v1/tools`` (names, descriptions, JSON Schemas) and ``POST /v1/tools/invoke``.

The registry is the app's own (``create_app(tools=...)``) or, when none was given, the built-in
sandboxed tools of the configured workspace, built on first use so start-up stays fast; the tools of
the configured ``mcp_servers`` are mounted into it at start-up (see :mod:`..mcp`).

With ``X-EP-Persona: NAME`` both routes apply that persona's tool allow-list, as the chat surfaces
do: the list shows only the allowed tools and invoking another one is a 403 ``tool_not_allowed``.
A key limited to personas (and no direct models) must name one of them, so it cannot step around
the allow-lists through this route.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from ...model.address import persona_address
from ..calls import principal_of
from ..limits import read_json_object
from ..responses import error_responses, json_body, json_response
from ..state import Gateway
from . import _chat

router = APIRouter(tags=["Tools"])

INVOKE_REQUEST = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "args": {"type": "object"}},
}
TOOL_LIST = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "array", "items": {"type": "object"}}},
}
INVOKE_RESULT = {
    "type": "object",
    "required": ["ok", "result"],
    "properties": {"ok": {"const": True}, "result": {}},
}


def tool_registry(gw: Gateway) -> Any:
    """The gateway's registry, built (built-in sandboxed tools) on first use."""
    if gw.tools is None:
        from ...tools.builtins import builtin_tools, workspace_for
        from ...tools.registry import ToolRegistry

        gw.tools = ToolRegistry(builtin_tools(workspace_for(gw.settings)))
    return gw.tools


def registry(request: Request) -> Any:
    return tool_registry(_chat.gateway(request))


def allow_list(request: Request) -> tuple[str | None, Collection[str] | None]:
    """The persona named by ``X-EP-Persona`` and its tool allow-list (None: every tool)."""
    principal = principal_of(request)
    name = request.headers.get("x-ep-persona")
    if not name:
        if principal.kind == "virtual" and principal.personas and not principal.models:
            raise PermissionDeniedError(
                "this key may use tools only through one of its personas (X-EP-Persona header)",
                code="model_not_allowed",
            )
        return None, None
    principal.require_model(persona_address(name))
    config = _chat.gateway(request).config
    personas = (config.get("personas") if isinstance(config, dict) else getattr(config, "personas", None)) or {}
    persona = personas.get(name)
    if persona is None:
        raise NotFoundError(f"unknown persona '{name}'", code="persona_not_found")
    tools = persona.get("tools") if isinstance(persona, dict) else persona.tools
    return name, tools


@router.get(
    "/v1/tools",
    responses={200: {"description": "Tools with JSON Schemas", "content": {"application/json": {"schema": TOOL_LIST}}},
               **error_responses(statuses=(401, 403, 404))},
    summary="List the gateway's tools",
)
async def list_tools(request: Request) -> Response:
    _, allowed = allow_list(request)
    return json_response({"data": registry(request).describe(allowed)})


@router.post(
    "/v1/tools/invoke",
    openapi_extra=json_body(INVOKE_REQUEST),
    responses={200: {"description": "The tool's result", "content": {"application/json": {"schema": INVOKE_RESULT}}},
               **error_responses(statuses=(400, 401, 403, 404, 413, 422))},
    summary="Invoke one tool",
)
async def invoke_tool(request: Request) -> Response:
    gw = _chat.gateway(request)
    body = await read_json_object(request, gw.limits)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("'name' is required", param="name")
    from ...tools.registry import is_allowed, to_jsonable

    persona, allowed = allow_list(request)
    if not is_allowed(name, allowed):
        raise PermissionDeniedError(
            f"persona '{persona}' may not use tool {name}; allowed: {', '.join(allowed or ()) or 'none'}",
            code="tool_not_allowed",
            param="name",
        )
    result = await registry(request).invoke(name, body.get("args"), allowed=allowed)
    return json_response({"ok": True, "result": to_jsonable(result)})
