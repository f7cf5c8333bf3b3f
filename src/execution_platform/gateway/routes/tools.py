"""``GET /v1/tools`` (names, descriptions, JSON Schemas) and ``POST /v1/tools/invoke``.

The registry is the app's own (``create_app(tools=...)``) or, when none was given, the built-in
sandboxed tools of the configured workspace, built on first use so start-up stays fast.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequestError
from ..limits import read_json_object
from ..responses import error_responses, json_body, json_response
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


def registry(request: Request) -> Any:
    gw = _chat.gateway(request)
    if gw.tools is None:
        from ...tools.builtins import builtin_tools, workspace_for
        from ...tools.registry import ToolRegistry

        gw.tools = ToolRegistry(builtin_tools(workspace_for(gw.settings)))
    return gw.tools


@router.get(
    "/v1/tools",
    responses={200: {"description": "Tools with JSON Schemas", "content": {"application/json": {"schema": TOOL_LIST}}},
               **error_responses(statuses=(401,))},
    summary="List the gateway's tools",
)
async def list_tools(request: Request) -> Response:
    return json_response({"data": registry(request).describe()})


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
    from ...tools.registry import to_jsonable

    result = await registry(request).invoke(name, body.get("args"))
    return json_response({"ok": True, "result": to_jsonable(result)})
