"""Direct dispatch of the model-call routes, skipping FastAPI's per-request machinery.

The hot routes take the raw ``Request`` and decode the body with the wire codec, so FastAPI's
dependency solving, ``AsyncExitStack``, exception-middleware wrapping and route matching buy them
nothing while costing a measurable share of each call. This pure-ASGI layer sits inside
``GatewayMiddleware`` (request id, auth, metrics, 500s) and calls the very endpoint functions the
FastAPI routes document, so ``/openapi.json`` is unchanged and every other path goes through FastAPI.
:class:`HotDispatch`, the outermost layer of the app, sends those requests straight to their own
``GatewayMiddleware`` + ``HotRoutes``, past FastAPI's outer middleware as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import EPError, PayloadTooLargeError
from .errors import error_response, surface_for
from .observe import note_error

HOT_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/chat", "/v1/embeddings", "/v1/responses"})

Endpoint = Callable[[Request], Awaitable[Response]]


class RequestHeaders(Headers):
    """starlette's ``Headers`` whose ``get`` is a dictionary lookup.

    A model call asks for a dozen optional headers (persona, team, run and session ids in several
    spellings), most of them absent: ``Mapping.get`` scanned the whole list for each and raised and
    caught a ``KeyError`` for every miss. The names are indexed once, on the first ``get``; a name
    sent twice answers with its first value, as starlette's does.
    """

    _index: dict[str, bytes] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        index = self._index
        if index is None:
            index = self._index = {name.decode("latin-1"): value for name, value in reversed(self._list)}
        value = index.get(key)
        if value is None:
            value = index.get(key.lower())
            if value is None:
                return default
        return value.decode("latin-1")


class HotRequest(Request):
    """The request a hot route's endpoint receives from :class:`HotRoutes`."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        super().__init__(scope, receive, send)
        self._request_headers = RequestHeaders(scope=scope)

    @property
    def headers(self) -> Headers:
        return self._request_headers

    async def read_body(self, limit: int) -> bytes:
        """The whole body, straight from ``receive`` (nothing else reads a hot request's body): what
        ``Request.stream`` yields, without its async generator. Refuses (413) as soon as the body
        passes ``limit`` bytes; a client gone before the end raises ``ClientDisconnect``."""
        receive = self.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLargeError(f"request body over the {limit} byte limit")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
            response = await endpoint(HotRequest(scope, receive, send))
        except EPError as err:
            note_error(scope, err)
            response = error_response(err, surface_for(scope["path"]))
        await response(scope, receive, send)


class HotDispatch:
    """Outermost ASGI layer: a ``POST`` to a hot path goes to ``hot``, everything else to ``app``.

    ``app`` is FastAPI's whole middleware stack: its server-error, exception-telemetry and body-limit
    layers, then ``GatewayMiddleware`` and the router. For the hot routes those outer layers do
    nothing that ``hot`` (``GatewayMiddleware`` around :class:`HotRoutes`) does not do itself: it
    answers every exception raised before the response started, an exception raised after it
    propagates to the server either way, and no body limit is set on the app. Skipping them saves a
    coroutine frame and a ``send`` wrapper each, on every request and every streamed write.
    """

    def __init__(self, app: Any, *, hot: Any, paths: frozenset[str]) -> None:
        self.app = app
        self.hot = hot
        self.paths = paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths and scope["method"] == "POST":
            await self.hot(scope, receive, send)
        else:
            await self.app(scope, receive, send)
