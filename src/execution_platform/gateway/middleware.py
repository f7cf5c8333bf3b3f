"""One pure-ASGI middleware for what every request needs: an id, authentication, metrics and the log.

Pure ASGI (not ``BaseHTTPMiddleware``) because it wraps every call, streams included, and must not add
a task or buffer a body. ``x-ep-overhead-ms`` is computed when the response headers go out: the time
since the request arrived minus the time spent waiting for upstreams (for a stream, up to its first
event), so it is known before the first byte and needs no trailer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect

from ..errors import EPError
from .auth import Authenticator, presented_secret
from .bodies import BodyReader, BodyTimeout
from .errors import error_response, internal_error, is_gemini_path, surface_for
from .fastpath import Endpoint, HotRequest
from .ids import request_id as new_request_id
from .observe import Observer, note_error

log = logging.getLogger("execution_platform.gateway")

PUBLIC_PATHS = frozenset({"/health", "/ui", "/ui/static/app.js", "/ui/static/app.css"})  # the page asks for a key
CLIENT_CLOSED = 499  # nginx's status for "client closed the request": counted, not an error
_OVERHEAD = b"x-ep-overhead-ms"


class GatewayMiddleware:
    """Around FastAPI's router (every route), or, with ``endpoints``, in front of the hot routes'
    endpoints themselves: ``path → endpoint`` for the ``POST`` requests :class:`~.fastpath.GatewayApp`
    sends here, each run on a :class:`~.fastpath.HotRequest`, its ``EPError`` answered in the
    route's surface's shape. Calling the endpoint here, not through one more ASGI layer, saves a
    coroutine frame that every resumption of the request's task would pass through."""

    def __init__(
        self, app: Any, *, authenticator: Authenticator, observer: Observer, body_timeout: float | None = None,
        endpoints: dict[str, Endpoint] | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.observer = observer
        self.body_timeout = body_timeout
        self.endpoints = endpoints

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_request_id()
        id_header = (b"x-ep-request-id", request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        overhead: float | None = None
        path: str = scope["path"]
        model_path = path in self.observer.model_paths
        if self.observer.tracer is not None:
            state["span"] = self.observer.start_span(scope)
        started_response = False
        answered_nobody = False  # the response began after the client had already gone
        finished = False  # the last body message was sent: a later disconnect lost the client nothing
        body = BodyReader(receive, self.body_timeout)

        def send_with_id(message: MutableMapping[str, Any]) -> Awaitable[None]:
            # A plain function handing back the server's own awaitable: every message of the response
            # (each event of a stream) passes here, and no coroutine of its own is made for that.
            nonlocal status, overhead, started_response, answered_nobody, finished
            kind = message["type"]
            if kind == "http.response.start":
                started_response = True
                answered_nobody = body.disconnected
                status = message["status"]
                ctx = state.get("call")
                if ctx is not None or model_path:
                    now = time.perf_counter()
                    overhead = now - started - (ctx.upstream_seconds(now) if ctx is not None else 0.0)
                    ms = b"%.3f" % (max(0.0, overhead) * 1000)
                    message["headers"] = [*message.get("headers", ()), id_header, (_OVERHEAD, ms)]
                else:
                    message["headers"] = [*message.get("headers", ()), id_header]
            elif kind == "http.response.body" and not message.get("more_body", False):
                finished = True
            return send(message)

        try:
            if path in PUBLIC_PATHS:
                await self.app(scope, body, send_with_id)
                return
            try:
                # (no hot route is one of Google's, whose key may come in the query string)
                query = scope.get("query_string", b"") if self.endpoints is None and is_gemini_path(path) else b""
                state["principal"] = self.authenticator.authenticate(presented_secret(scope["headers"], query))
            except EPError as err:
                note_error(scope, err)
                await error_response(err, surface_for(path))(scope, body, send_with_id)
                return
            try:
                endpoints = self.endpoints
                if endpoints is None:
                    await self.app(scope, body, send_with_id)
                else:
                    try:
                        response = await endpoints[path](HotRequest(scope, body, send_with_id))
                    except EPError as err:
                        note_error(scope, err)
                        response = error_response(err, surface_for(path))
                    await response(scope, body, send_with_id)
            except Exception as exc:
                if started_response:
                    raise
                if isinstance(exc, ClientDisconnect) or body.disconnected:
                    return  # counted as 499 below; nobody is left to answer
                if isinstance(exc, BodyTimeout):
                    log.info("%s %s: %s", scope["method"], path, exc.detail)
                    await error_response(exc.as_error(), surface_for(path), headers=exc.headers)(
                        scope, body, send_with_id)
                    return
                internal = internal_error(exc)
                note_error(scope, internal)
                await error_response(internal, surface_for(path))(scope, body, send_with_id)
        finally:
            if body.disconnected and (not started_response or answered_nobody or not finished):
                status = CLIENT_CLOSED
                log.info("%s %s: client disconnected before the end of the response", scope["method"], path)
            try:
                self.observer.finish(scope, status, started, overhead)
            except Exception as exc:  # recording must never break a response that is already out
                log.error("recording the request failed: %s", type(exc).__name__)
