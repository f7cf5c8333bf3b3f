"""``ep serve``: run the gateway with uvicorn (uvloop + httptools), one or more worker processes."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from .app import app

if TYPE_CHECKING:
    import socket


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8000, "--port", help="Port to bind."),
    config: Path | None = typer.Option(None, "--config", help="YAML config file (else EP_CONFIG)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
    log_format: str | None = typer.Option(
        None, "--log-format", help="json or text (default: json unless stdout is a terminal); one line per request."
    ),
    keep_alive_timeout: float | None = typer.Option(
        None, "--keep-alive-timeout", min=0.001, help="Close idle keep-alive connections after this many seconds "
        "(else the config's server.keep_alive_timeout, 5)."),
    header_timeout: float | None = typer.Option(
        None, "--header-timeout", min=0.001, help="Close connections whose request headers are not complete "
        "after this many seconds (else server.header_timeout, 10)."),
    body_timeout: float | None = typer.Option(
        None, "--body-timeout", min=0.001, help="408 and close when a request body stalls this many seconds "
        "(else server.body_timeout, 30)."),
    max_connections: int | None = typer.Option(
        None, "--max-connections", min=1, help="Answer 503 beyond this many connections "
        "(else server.max_connections, 10000)."),
) -> None:
    """Start the gateway (native, OpenAI- and Anthropic-compatible APIs on one port)."""
    from ..config.settings import Settings, master_key_problem

    if config is not None:
        os.environ["EP_CONFIG"] = str(config)
    settings = Settings()
    problem = master_key_problem(settings.secret("master_key"))
    if problem:
        typer.secho(f"refusing to start: {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if not settings.secret("master_key") and not is_loopback(host):
        typer.secho(
            f"refusing to bind {host}: without EP_MASTER_KEY the gateway serves without authentication, "
            "which is only allowed on a loopback address (127.0.0.1, ::1, localhost). "
            "Set EP_MASTER_KEY or bind 127.0.0.1.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    loaded = None
    if settings.config is not None:
        from ..gateway.app import load_config

        try:
            loaded = load_config(settings)  # fail before forking workers when the file is invalid
        except Exception as exc:
            typer.secho(f"invalid config: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
    skip_file_watcher()
    from ..config.schema import ServerConfig
    from ..gateway.app import BODY_TIMEOUT_ENV, FORWARDED_ENV
    from ..gateway.protocol import HEADER_TIMEOUT_ENV

    server = getattr(loaded, "server", None) or ServerConfig()
    keep_alive = keep_alive_timeout or server.keep_alive_timeout
    connections = max_connections or server.max_connections
    # Read by each worker process (uvicorn spawns them; they import the app and protocol by name).
    os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout or server.header_timeout)
    os.environ[BODY_TIMEOUT_ENV] = str(body_timeout or server.body_timeout)
    # uvicorn's proxy-headers rule, applied by the app only to requests that carry such headers
    # (``proxy_headers=False`` below): the addresses uvicorn would trust, as uvicorn reads them.
    os.environ[FORWARDED_ENV] = os.environ.get("FORWARDED_ALLOW_IPS", UVICORN_FORWARDED_DEFAULT)
    fds = raise_fd_limit()

    if workers > 1 and not settings.redis_url:
        typer.secho(
            f"WARNING: {workers} workers without EP_REDIS_URL: each worker enforces budgets and rate limits on "
            "its own (exact per worker, not across them). Set EP_REDIS_URL to share them.",
            fg=typer.colors.YELLOW, err=True,
        )
    from ..tools.commands import sandbox_unavailable

    if (reason := sandbox_unavailable()) is not None:  # fail closed, but say so where the operator looks
        typer.secho(f"WARNING: {reason}", fg=typer.colors.YELLOW, err=True)
    from ..gateway.logs import ENV, FORMATS, default_format

    fmt = log_format or os.environ.get(ENV) or default_format()
    if fmt not in FORMATS:
        raise typer.BadParameter("--log-format must be json or text")
    os.environ[ENV] = fmt
    migrate_aside(settings.resolved_database_url())
    multiproc = _multiprocess_metrics(workers)

    import uvicorn

    try:
        _run(uvicorn, host, port, workers, log_level, keep_alive=keep_alive,
             limit_concurrency=max(1, min(connections, fds - FD_RESERVE)))
    finally:
        if multiproc is not None:
            import shutil

            shutil.rmtree(multiproc, ignore_errors=True)


def skip_file_watcher() -> None:
    """Keep uvicorn from loading its file watcher (``watchfiles``, ~1.2 MB resident) in this process,
    which is the server itself with one worker (and the supervisor with several): ``ep serve`` never
    reloads on file changes. Marked missing before uvicorn is first imported, the watcher is replaced
    by uvicorn's own fallback, which is never run either."""
    if "uvicorn" not in sys.modules:
        sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]


def migrate_aside(database_url: str) -> None:
    """Bring the schema to the current revision in a forked child, so alembic never enters a serving
    process (the workers then find the schema current and skip it: see ``storage.migrate``).

    A child that fails changes nothing: the workers migrate as before and report the error where
    they always did."""
    from ..storage import create_engine_from_url
    from ..storage.migrate import is_current

    engine = create_engine_from_url(database_url)
    try:
        if is_current(engine):
            return
    except Exception:  # unreachable database: the workers say so
        return
    finally:
        engine.dispose()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's exit status is what the parent sees
        code = 1
        try:
            from ..storage import migrate

            child = create_engine_from_url(database_url)
            migrate(child)
            child.dispose()
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _multiprocess_metrics(workers: int) -> str | None:
    """With several workers, Prometheus values go to a private temporary directory all workers share,
    so one scrape (answered by any worker) sees the sum. Returns the directory to remove at exit."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    import tempfile

    path = tempfile.mkdtemp(prefix="ep-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _run(uvicorn: Any, host: str, port: int, workers: int, log_level: str, *, keep_alive: float,
         limit_concurrency: int) -> None:
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="execution_platform.gateway.protocol:HeaderTimeoutProtocol",
        ws="none",  # no WebSocket routes: the websockets library would be dead weight in every worker
        log_level=log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the app applies the same rule, more cheaply: see gateway.fastpath.GatewayApp
        timeout_keep_alive=keep_alive,
        # Refuse (503) before the process runs out of descriptors: accept() failing would refuse silently.
        limit_concurrency=limit_concurrency,
    )
    from . import reuseport

    if workers == 1 or port == 0 or not reuseport.supported():
        uvicorn.run(APP_FACTORY, **options)
        return
    # Several workers: one SO_REUSEPORT socket each, so connections spread evenly (see .reuseport).
    try:
        reuseport.check_address(host, port)
    except OSError as exc:
        typer.secho(f"cannot bind {host}:{port}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(APP_FACTORY, **options)
    listener = cast("socket.socket", reuseport.ReusePortListener(host, port))  # a socket once in the worker
    Multiprocess(config, sockets=[listener]).run()


APP_FACTORY = "execution_platform.gateway.app:create_app_from_env"
UVICORN_FORWARDED_DEFAULT = "127.0.0.1,::1"  # uvicorn's ``forwarded_allow_ips`` without FORWARDED_ALLOW_IPS


FD_RESERVE = 256  # descriptors kept for upstream connections, the database and log files


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (many idle clients must not starve new ones)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1_048_576
