"""Small response helpers: orjson bodies and the OpenAPI description of error answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

_JSON_TYPE = (b"content-type", b"application/json")


class JSONBytes(Response):
    """A JSON answer whose body is already bytes (orjson's, or the upstream's own on the fast path).

    The same status, headers and body starlette's ``Response(body, media_type="application/json")``
    sends, without its generic steps (rendering, header-name checks, a background task): its head
    is built once, as the byte pairs the server writes.
    """

    media_type = "application/json"

    def __init__(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,
        *,
        head: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """``head``: the headers already as lower-case byte pairs (taken, not copied), instead of ``headers``."""
        self.status_code = status_code
        self.background = None
        self.body = body
        if head is not None:
            raw = head
        else:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()] if headers else []
        if not (status_code < 200 or status_code in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode()))
        raw.append(_JSON_TYPE)
        self.raw_headers = raw

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONBytes(orjson.dumps(payload), headers, status)


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
