"""One pure-ASGI middleware for what every request needs: an id, authentication, metrics and the log.

Pure ASGI (not ``BaseHTTPMiddleware``) because it wraps every call, streams included, and must not add
a task or buffer a body. ``x-ep-overhead-ms`` is computed when the response headers go out: the time
since the request arrived minus the time spent waiting for upstreams (for a stream, up to its first
event), so it is known before the first byte and needs no trailer.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ..errors import EPError
from .auth import Authenticator, presented_secret
from .errors import error_response, internal_error, is_gemini_path, surface_for
from .observe import Observer, note_error

log = logging.getLogger("execution_platform.gateway")

PUBLIC_PATHS = frozenset({"/health", "/ui", "/ui/static/app.js", "/ui/static/app.css"})  # the page asks for a key


class GatewayMiddleware:
    def __init__(self, app: Any, *, authenticator: Authenticator, observer: Observer) -> None:
        self.app = app
        self.authenticator = authenticator
        self.observer = observer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        id_header = (b"x-ep-request-id", request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started_response = [False]
        overhead: float | None = None
        path: str = scope["path"]
        model_paths = self.observer.model_paths
        if self.observer.tracer is not None:
            state["span"] = self.observer.start_span(scope)

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, overhead
            if message["type"] == "http.response.start":
                started_response[0] = True
                status = message["status"]
                ctx = state.get("call")
                if ctx is not None or path in model_paths:
                    now = time.perf_counter()
                    overhead = now - started - (ctx.upstream_seconds(now) if ctx is not None else 0.0)
                    ms = f"{max(0.0, overhead) * 1000:.3f}".encode()
                    message["headers"] = [*message.get("headers", ()), id_header, (b"x-ep-overhead-ms", ms)]
                else:
                    message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if path in PUBLIC_PATHS:
                await self.app(scope, receive, send_with_id)
                return
            try:
                query = scope.get("query_string", b"") if is_gemini_path(path) else b""
                state["principal"] = self.authenticator.authenticate(presented_secret(scope["headers"], query))
            except EPError as err:
                note_error(scope, err)
                await error_response(err, surface_for(path))(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started_response[0]:
                    raise
                err = internal_error(exc)
                note_error(scope, err)
                await error_response(err, surface_for(path))(scope, receive, send_with_id)
        finally:
            try:
                self.observer.finish(scope, status, started, overhead)
            except Exception as exc:  # recording must never break a response that is already out
                log.error("recording the request failed: %s", type(exc).__name__)
