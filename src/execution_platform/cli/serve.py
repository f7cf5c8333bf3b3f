"""``ep serve``: run the gateway with uvicorn (uvloop + httptools), one or more worker processes."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import typer

from .app import app


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
) -> None:
    """Start the gateway (native, OpenAI- and Anthropic-compatible APIs on one port)."""
    from ..config.settings import Settings

    if config is not None:
        os.environ["EP_CONFIG"] = str(config)
    settings = Settings()
    if not settings.secret("master_key") and not is_loopback(host):
        typer.secho(
            f"refusing to bind {host}: without EP_MASTER_KEY the gateway serves without authentication, "
            "which is only allowed on a loopback address (127.0.0.1, ::1, localhost). "
            "Set EP_MASTER_KEY or bind 127.0.0.1.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    if settings.config is not None:
        from ..gateway.app import load_config

        try:
            load_config(settings)  # fail before forking workers when the file is invalid
        except Exception as exc:
            typer.secho(f"invalid config: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    from ..tools.commands import sandbox_unavailable

    if (reason := sandbox_unavailable()) is not None:  # fail closed, but say so where the operator looks
        typer.secho(f"WARNING: {reason}", fg=typer.colors.YELLOW, err=True)
    from ..gateway.logs import ENV, FORMATS, default_format

    fmt = log_format or os.environ.get(ENV) or default_format()
    if fmt not in FORMATS:
        raise typer.BadParameter("--log-format must be json or text")
    os.environ[ENV] = fmt
    multiproc = _multiprocess_metrics(workers)

    import uvicorn

    try:
        _run(uvicorn, host, port, workers, log_level)
    finally:
        if multiproc is not None:
            import shutil

            shutil.rmtree(multiproc, ignore_errors=True)


def _multiprocess_metrics(workers: int) -> str | None:
    """With several workers, Prometheus values go to a private temporary directory all workers share,
    so one scrape (answered by any worker) sees the sum. Returns the directory to remove at exit."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    import tempfile

    path = tempfile.mkdtemp(prefix="ep-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _run(uvicorn: Any, host: str, port: int, workers: int, log_level: str) -> None:
    uvicorn.run(
        "execution_platform.gateway.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        server_header=False,
    )
