"""One pure-ASGI middleware for what every request needs: an id, authentication and metrics.

Pure ASGI (not ``BaseHTTPMiddleware``) because it wraps every call, streams included, and must not add
a task or buffer a body.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..errors import EPError
from .auth import Authenticator, presented_secret
from .errors import error_response, internal_error, is_gemini_path, surface_for
from .metrics import Metrics

PUBLIC_PATHS = frozenset({"/health"})


class GatewayMiddleware:
    def __init__(self, app: Any, *, authenticator: Authenticator, metrics: Metrics) -> None:
        self.app = app
        self.authenticator = authenticator
        self.metrics = metrics

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

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                started_response[0] = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        path: str = scope["path"]
        try:
            if path in PUBLIC_PATHS:
                await self.app(scope, receive, send_with_id)
                return
            try:
                query = scope.get("query_string", b"") if is_gemini_path(path) else b""
                state["principal"] = self.authenticator.authenticate(presented_secret(scope["headers"], query))
            except EPError as err:
                await error_response(err, surface_for(path))(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started_response[0]:
                    raise
                await error_response(internal_error(exc), surface_for(path))(scope, receive, send_with_id)
        finally:
            self.metrics.observe(path, status, time.perf_counter() - started)
