"""Direct dispatch of the model-call routes, skipping FastAPI's per-request machinery.

The hot routes take the raw ``Request`` and decode the body with the wire codec, so FastAPI's
dependency solving, ``AsyncExitStack``, exception-middleware wrapping and route matching buy them
nothing while costing a measurable share of each call. This pure-ASGI layer sits inside
``GatewayMiddleware`` (request id, auth, metrics, 500s) and calls the very endpoint functions the
FastAPI routes document, so ``/openapi.json`` is unchanged and every other path goes through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import EPError
from .errors import error_response, surface_for
from .observe import note_error

HOT_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/chat", "/v1/embeddings", "/v1/responses"})

Endpoint = Callable[[Request], Awaitable[Response]]


def hot_endpoints(routes: Iterable[Any]) -> dict[str, Endpoint]:
    """``path → endpoint`` for the hot ``POST`` routes among the app's (FastAPI-documented) routes."""
    found: dict[str, Endpoint] = {}
    for route in routes:
        path = getattr(route, "path", None)
        if path in HOT_PATHS and "POST" in (getattr(route, "methods", None) or ()):
            found[path] = route.endpoint
    return found


class HotRoutes:
    """Pure ASGI: ``POST`` to a hot path runs its endpoint directly; anything else falls through."""

    def __init__(self, app: Any, *, endpoints: dict[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive, send))
        except EPError as err:
            note_error(scope, err)
            response = error_response(err, surface_for(scope["path"]))
        await response(scope, receive, send)
