"""Render every failure in the calling surface's own error shape.

OpenAI clients expect ``{"error": {...}}`` and Anthropic clients ``{"type": "error", "error": {...}}``;
the official SDKs map the HTTP status to their exception classes, so status and shape both matter.
Bodies come from each codec's ``encode_error``; nothing here ever includes a traceback or a key.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import orjson
from starlette.responses import Response

from ..errors import (
    AuthenticationError,
    EPError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UpstreamAuthenticationError,
    scrub,
)

log = logging.getLogger("execution_platform.gateway")

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"

_CODECS = {
    OPENAI: "execution_platform.codecs.openai_chat",
    ANTHROPIC: "execution_platform.codecs.anthropic_messages",
    GEMINI: "execution_platform.codecs.gemini",
}
_loaded: dict[str, ModuleType] = {}


def codec_for(surface: str) -> ModuleType:
    """The wire codec module of a surface, imported on first use."""
    module = _loaded.get(surface)
    if module is None:
        module = _loaded[surface] = importlib.import_module(_CODECS[surface])
    return module


def is_gemini_path(path: str) -> bool:
    """Google's surface: everything under ``/v1beta/``, and ``/v1/models/{model}:method`` calls."""
    return path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path)


def surface_for(path: str) -> str:
    """Anthropic shape on ``/v1/messages``, Google's on the Gemini routes; OpenAI shape everywhere else."""
    if path.startswith("/v1/messages"):
        return ANTHROPIC
    return GEMINI if is_gemini_path(path) else OPENAI


def client_facing(err: EPError) -> EPError:
    """The error as the gateway's client must see it: an upstream 401/403 is the gateway's fault.

    The gateway's own refusals of the client's key name no provider and carry no ``upstream_status``;
    one that does came from a provider rejecting the key the gateway holds: a 502 naming that.
    """
    from_upstream = err.provider is not None or err.upstream_status in (401, 403)
    if isinstance(err, AuthenticationError | PermissionDeniedError) and from_upstream:
        log.warning("upstream %s refused the gateway's provider key (HTTP %s)", err.provider, err.upstream_status)
        who = f"the upstream provider {err.provider}" if err.provider else "the upstream provider"
        status = f" (HTTP {err.upstream_status})" if err.upstream_status else ""
        return UpstreamAuthenticationError(
            f"{who} refused the gateway's credentials{status}; this is a gateway configuration problem, not your key",
            provider=err.provider,
            upstream_status=err.upstream_status,
            code="upstream_authentication_error",
        )
    return err


def error_payload(err: EPError, surface: str) -> tuple[int, dict[str, Any]]:
    status, body = codec_for(surface).encode_error(client_facing(err))
    return status, body


def error_response(err: EPError, surface: str, headers: Mapping[str, str] | None = None) -> Response:
    err = client_facing(err)
    status, body = error_payload(err, surface)
    extra = dict(headers or {})
    if err.retry_after is not None:
        extra["retry-after"] = str(max(0, round(err.retry_after)))
    own_limit = getattr(err, "response_headers", None)  # our own 429: Retry-After + x-ratelimit-*
    if own_limit is not None:
        extra.update(own_limit())
    if not err.retryable and (status in (408, 409, 429) or status >= 500):
        # The official SDKs retry these statuses by default; this header (which they honour) stops a
        # pointless retry of e.g. an exhausted quota or a stream that already broke mid-answer.
        extra["x-should-retry"] = "false"
    attempts = getattr(err, "attempts", None)
    if attempts:
        extra["x-ep-attempts"] = str(sum(1 for a in attempts if getattr(a, "status", "ok") != "skipped"))
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=extra)


def internal_error(exc: BaseException) -> EPError:
    """An unexpected exception becomes a generic 500 whose message reveals nothing internal."""
    log.error("unhandled error: %s", scrub(f"{type(exc).__name__}: {exc}"))
    err = EPError("internal error")
    return err


def install_handlers(app: Any) -> None:
    """Map EPError, FastAPI validation errors and Starlette HTTP errors to surface-shaped bodies."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from .observe import note_error

    async def on_ep_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EPError)
        note_error(request.scope, exc)
        return error_response(exc, surface_for(request.url.path))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        message = f"invalid request: {first.get('msg', 'invalid value')}" + (f" at '{param}'" if param else "")
        invalid = InvalidRequestError(message, param=param)
        note_error(request.scope, invalid)
        return error_response(invalid, surface_for(request.url.path))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        from .bodies import BodyTimeout

        err: EPError
        if isinstance(exc, BodyTimeout):
            err = exc.as_error()
        elif exc.status_code == 404:
            err = NotFoundError(f"no route {request.method} {request.url.path}", code="route_not_found")
        elif exc.status_code == 405:
            err = InvalidRequestError(f"method {request.method} not allowed on {request.url.path}")
            err.status_code = 405  # type: ignore[misc]
        else:
            err = InvalidRequestError(str(exc.detail))
            err.status_code = exc.status_code  # type: ignore[misc]
        note_error(request.scope, err)
        return error_response(err, surface_for(request.url.path), headers=dict(exc.headers or {}))

    app.add_exception_handler(EPError, on_ep_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
