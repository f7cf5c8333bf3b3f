"""Direct dispatch of the model-call routes, skipping FastAPI's per-request machinery.

The hot routes take the raw ``Request`` and decode the body with the wire codec, so FastAPI's
dependency solving, ``AsyncExitStack``, exception-middleware wrapping and route matching buy them
nothing while costing a measurable share of each call. :class:`GatewayApp`, the app the server
calls, sends those requests straight to a ``GatewayMiddleware`` (request id, auth, metrics, 500s)
that calls the very endpoint functions the FastAPI routes document on a :class:`HotRequest`, past
FastAPI's and Starlette's own ``__call__``, outer middleware and router; ``/openapi.json`` is
unchanged and every other path goes through FastAPI.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp

from ..errors import PayloadTooLargeError

HOT_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/chat", "/v1/embeddings", "/v1/responses"})

Endpoint = Callable[[Request], Awaitable[Response]]
HotApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]  # the ASGI app in front of the endpoints
F = TypeVar("F", bound=Callable[..., Any])


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
    """The request a hot route's endpoint receives from ``GatewayMiddleware``."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        super().__init__(scope, receive, send)
        self._request_headers = RequestHeaders(raw=scope["headers"])  # the server's list, not a copy

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


def coroutine_function(func: F) -> F:
    """Mark ``func``, a plain function that returns a coroutine, as a coroutine function for
    ``inspect.iscoroutinefunction`` and ``asyncio.iscoroutinefunction``, which servers and test
    clients use to tell an ASGI 3 app from an ASGI 2 one (asgiref's ``markcoroutinefunction`` does
    the same)."""
    if sys.version_info >= (3, 12):
        return inspect.markcoroutinefunction(func)
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


async def _scope_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app behind :attr:`GatewayApp.forwarded`: the middleware has rewritten the scope; nothing more."""


class GatewayApp(FastAPI):
    """The FastAPI app whose own ``__call__`` sends a ``POST`` to a hot path straight to ``hot``.

    ``hot`` is a ``GatewayMiddleware`` (id, auth, metrics, log, 500s) that runs the hot endpoints
    itself. The server calls the app, so without this every model call first went through
    ``FastAPI.__call__`` (its native-telemetry check, a tracer-provider lookup per request),
    ``Starlette.__call__`` and then FastAPI's outer middleware (server errors, exception telemetry,
    body limit), none of which does anything for these routes that ``hot`` does not do itself: it
    answers every exception raised before the response started, an exception raised after it
    propagates to the server either way, and no body limit is set on the app. Every layer skipped is
    a coroutine frame that each resumption of the request's task passes through (a stream's task
    resumes at every event), and ``__call__`` itself adds none. Everything else (other routes and
    methods, lifespan) goes through FastAPI as before.

    ``forwarded``: uvicorn's ``ProxyHeadersMiddleware`` (``X-Forwarded-For``/``-Proto`` from a trusted
    address rewrite the scope's client and scheme), applied here when ``ep serve`` turned the
    server's own off. Only a request that carries one of those headers goes through it, and the
    middleware decides trust and rewrites by its own rules, so the result is uvicorn's: the other
    requests skip a coroutine layer and a trust lookup.
    """

    hot: HotApp  # set with the paths it serves (none until then)
    hot_paths: frozenset[str] = frozenset()
    forwarded: ASGIApp | None = None

    def serve_hot(self, hot: HotApp, paths: frozenset[str]) -> None:
        self.hot = hot
        self.hot_paths = paths

    def trust_forwarded(self, trusted_hosts: str) -> None:
        """Apply ``X-Forwarded-*`` headers from ``trusted_hosts`` (uvicorn's ``--forwarded-allow-ips``)."""
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.forwarded = cast("ASGIApp", ProxyHeadersMiddleware(cast("Any", _scope_only), trusted_hosts=trusted_hosts))

    @coroutine_function
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:  # type: ignore[override]
        # Not ``async``: it returns the coroutine of the layer it picks, which the server awaits
        # itself, so this method adds no frame to the request's coroutine chain.
        if scope["type"] == "http":
            if self.forwarded is not None:
                for name, _ in scope["headers"]:
                    if name == b"x-forwarded-for" or name == b"x-forwarded-proto":
                        return self._forwarded(scope, receive, send)
            return self._dispatch(scope, receive, send)
        return super().__call__(scope, receive, send)

    def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        if scope["method"] == "POST" and scope["path"] in self.hot_paths:
            scope["app"] = self  # what Starlette.__call__ sets: ``Request.app``
            if self.root_path:
                scope["root_path"] = self.root_path
            return self.hot(scope, receive, send)
        return super().__call__(scope, receive, send)

    async def _forwarded(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await cast("ASGIApp", self.forwarded)(scope, receive, send)  # rewrites the scope, returns at once
        await self._dispatch(scope, receive, send)
