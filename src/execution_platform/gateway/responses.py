"""Small response helpers: orjson bodies and the OpenAPI description of error answers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
_ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

_ERROR_STATUSES = {
    400: "Invalid request",
    401: "Missing or invalid key",
    402: "Budget exhausted",
    403: "Key not allowed this model or persona",
    404: "Unknown model, deployment or persona",
    412: "No target has the needed capabilities",
    413: "Body over the configured limit",
    429: "Rate limited",
    500: "Gateway misconfiguration (e.g. no key for the provider)",
    502: "Upstream failed",
    503: "Upstream overloaded",
    504: "Upstream timed out",
}


def error_responses(anthropic: bool = False, statuses: tuple[int, ...] | None = None) -> dict[int | str, Any]:
    schema = _ANTHROPIC_ERROR if anthropic else _OPENAI_ERROR
    chosen = statuses or tuple(_ERROR_STATUSES)
    return {
        code: {"description": _ERROR_STATUSES.get(code, "Error"), "content": {"application/json": {"schema": schema}}}
        for code in chosen
    }


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` publishing a request body that the handler decodes itself (no FastAPI validation)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# OpenAPI 3.1 reads the ``schema`` of ``text/event-stream`` as one event's (3.2 calls it ``itemSchema``).
SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"},
                   "retry": {"type": "integer"}},
}


def sse_and_json(schema: dict[str, Any]) -> dict[int | str, Any]:
    return {
        200: {
            "description": "The answer (JSON), or server-sent events when the request asked to stream",
            "content": {"application/json": {"schema": schema}, "text/event-stream": {"schema": SSE_EVENT}},
        }
    }
