"""``create_app``: the FastAPI application behind ``ep serve``.

FastAPI gives ``/docs`` and ``/openapi.json``; the hot routes take the raw request and decode it with
the wire codec themselves (their schemas are published through ``openapi_extra``), so a request is
validated once, by the codec, not twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from ..storage.keys import KeyStore
from . import money
from .auth import Authenticator
from .errors import install_handlers
from .fastpath import GatewayApp, hot_endpoints
from .limits import Limits
from .metrics import Metrics
from .middleware import GatewayMiddleware
from .observe import Observer
from .state import Gateway

if TYPE_CHECKING:
    from ..client import Client
    from ..config.schema import Config
    from ..config.settings import Settings
    from ..money.meter import Meter
    from ..tools.registry import ToolRegistry


def open_key_store(settings: Settings) -> KeyStore:
    """The SQL key repository on the configured database (schema migrated at start-up)."""
    from ..storage.keys import open_key_repository

    return open_key_repository(settings.resolved_database_url())


def _config_section(config: Any, name: str) -> Any:
    if config is None:
        return None
    return config.get(name) if isinstance(config, dict) else getattr(config, name, None)


# FastAPI's native OpenTelemetry (0.165 and later) turns itself on when any global tracer, meter or
# logger provider is set, and then adds its own server span and ``http.server.*`` metrics around
# every request. The gateway owns its tracing (``tracing``, never installed globally) and metrics
# (``metrics``): GatewayMiddleware opens the server span and counts every request, the hot routes
# included, which never pass through FastAPI's ``__call__`` at all (see fastpath.GatewayApp). So
# FastAPI's is off: a second, partial set of spans for the other routes only would mislead, and
# the per-request check of the global providers is skipped too. The ``telemetry`` argument is
# passed as is (fastapi's lower bound in pyproject is the release that has it) rather than
# guarded: an older FastAPI fails at start-up instead of silently tracing twice.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

BODY_TIMEOUT = 30.0  # seconds a request body may stall (the config's ``server.body_timeout``)
BODY_TIMEOUT_ENV = "EP_SERVER_BODY_TIMEOUT"  # set by ``ep serve`` for its workers (flag or config)
# Set by ``ep serve``, which turns uvicorn's proxy-headers layer off: the addresses whose
# ``X-Forwarded-*`` headers the app applies itself (see fastpath.GatewayApp).
FORWARDED_ENV = "EP_SERVER_FORWARDED_ALLOW_IPS"


def server_setting(config: Any, name: str, default: float) -> float:
    """One value of the config's ``server`` section (dict or model), else ``default``."""
    value = _config_section(_config_section(config, "server"), name)
    return float(value) if value is not None else default


def create_app(
    settings: Settings | None = None,
    config: Config | None = None,
    client: Client | None = None,
    *,
    limits: Limits | None = None,
    key_store: KeyStore | None = None,
    tools: ToolRegistry | None = None,
    extra_models: tuple[str, ...] = (),
    first_event_wait: float = 10.0,
    keepalive: float = 15.0,
    config_path: str | os.PathLike[str] | None = None,
    body_timeout: float | None = None,
    settle_heap: bool = False,
    forwarded_allow_ips: str | None = None,
) -> FastAPI:
    """The gateway app; with ``config_path`` the file is reloaded on SIGHUP (see :mod:`.reload`).

    Without ``client`` the app builds its own, metered by the app's meter (ledger, budgets, limits;
    started and closed with the app); a ``client`` given in is used as it is, with its own meter or none.

    ``settle_heap``: freeze the start-up heap out of the garbage collector's reach (see :mod:`.heap`),
    for a process that exists to serve this app.

    ``forwarded_allow_ips``: the app applies ``X-Forwarded-For``/``-Proto`` from these addresses
    itself (uvicorn's rule and syntax), for a server started with its own proxy-headers layer off
    (``ep serve``); None leaves them to the server."""
    from . import pydantic_v1

    pydantic_v1.install()  # before any route is built: FastAPI's v1 check would load pydantic 1
    if settings is None:
        from ..config.settings import Settings

        settings = Settings()
    keys = key_store if key_store is not None else open_key_store(settings)
    meter: Meter | None = None
    if client is None:
        from ..client import Client

        meter = money.open_meter(settings, config, keys)  # connected at start-up
        client = Client(settings, config=config, meter=meter)
    metrics = Metrics()
    from .. import tracing

    observer = Observer(metrics, tracing.tracer())
    gateway = Gateway(
        settings=settings,
        config=config,
        client=client,
        limits=limits or Limits.from_mapping(_config_section(config, "server")),
        keys=keys,
        authenticator=Authenticator(settings.secret("master_key"), keys),
        metrics=metrics,
        observer=observer,
        tools=tools,
        extra_models=extra_models,
        first_event_wait=first_event_wait,
        keepalive=keepalive,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .reload import install_sighup, remove_sighup

        reloading = config_path is not None and install_sighup(gateway, config_path)
        await money.start(meter)
        async with contextlib.AsyncExitStack() as mcp_servers:
            servers = _config_section(config, "mcp_servers")
            if servers:
                from .mcp import mount_servers
                from .routes.tools import tool_registry

                await mount_servers(servers, tool_registry(gateway), mcp_servers)
            if settle_heap:
                from .heap import settle

                settle()
            yield
        if reloading:
            remove_sighup()
        with contextlib.suppress(Exception):
            await client.aclose()
        await money.close(meter)
        from ..providers.http import close_shared_pool

        await close_shared_pool()  # the upstream pool, if it lives on this server's loop

    app = GatewayApp(
        title="Execution Platform gateway",
        version="0.1.0",
        summary="One server speaking native, OpenAI and Anthropic APIs in front of every provider.",
        lifespan=lifespan,
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    app.state.gateway = gateway
    from .routes import admin, anthropic, costs, gemini, models, native, openai
    from .routes import metrics as metrics_routes
    from .routes import responses as responses_routes
    from .routes import tools as tool_routes
    from .routes import ui as ui_routes

    modules = (native, openai, models, anthropic, responses_routes, gemini, tool_routes, admin, metrics_routes, costs,
               ui_routes)
    for module in modules:
        app.include_router(module.router)
    install_handlers(app)
    hot = hot_endpoints(route for module in modules for route in module.router.routes)
    timeout = body_timeout or server_setting(config, "body_timeout", BODY_TIMEOUT)
    app.add_middleware(GatewayMiddleware, authenticator=gateway.authenticator, observer=observer,
                       body_timeout=timeout)
    # The hot routes get their own GatewayMiddleware (id, auth, metrics, log, 500s), called by the app
    # itself ahead of FastAPI's layers, which add nothing to them: see fastpath.GatewayApp.
    app.serve_hot(GatewayMiddleware(None, authenticator=gateway.authenticator, observer=observer,
                                    body_timeout=timeout, endpoints=hot), frozenset(hot))
    if forwarded_allow_ips is not None:
        app.trust_forwarded(forwarded_allow_ips)
    _publish_native_schemas(app, native.native_components(), gateway)
    return app


def _publish_native_schemas(app: FastAPI, components: dict[str, Any], gateway: Gateway) -> None:
    """Add the canonical model's schemas (referenced by ``/chat``) to the generated document and
    narrow the hot routes' request schemas to what this gateway accepts (see :mod:`.openapi`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from .openapi import refine
            from .routes.tools import tool_registry

            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            tools = {tool.name: tool.spec().parameters for tool in tool_registry(gateway)}
            app.openapi_schema = refine(schema, gateway, tools)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one app per worker), configured from ``EP_*`` and ``EP_CONFIG``."""
    from ..config.settings import Settings, master_key_problem
    from .logs import ENV, configure

    if os.environ.get(ENV):  # set by ``ep serve`` for its workers
        configure(os.environ[ENV])
    settings = Settings()
    problem = master_key_problem(settings.secret("master_key"))
    if problem:  # ``ep serve`` says so before starting; this covers ``uvicorn --factory`` started by hand
        raise SystemExit(f"refusing to start: {problem}")
    body_timeout = os.environ.get(BODY_TIMEOUT_ENV)
    return create_app(settings, load_config(settings), config_path=settings.config,
                      body_timeout=float(body_timeout) if body_timeout else None, settle_heap=True,
                      forwarded_allow_ips=os.environ.get(FORWARDED_ENV))


def load_config(settings: Settings) -> Config | None:
    """The YAML config named by ``EP_CONFIG`` (``settings.config``), or None when none is set."""
    if not settings.config:
        return None
    from ..config.file import load_config as load_file

    return load_file(settings.config)
