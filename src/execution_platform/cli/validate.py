"""``ep validate``: check the YAML configuration and persona policy before starting anything."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command()
def validate(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file (default: $EP_CONFIG)."),
) -> None:
    """Validate the configuration file; exit 1 listing every problem as FILE:LINE: PATH: REASON."""
    from ..config.file import ConfigFileError, load_config

    if config is None:
        from ..config.settings import Settings

        config = Settings().config
    if config is None:
        typer.secho("no configuration file: pass --config FILE or set EP_CONFIG", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    try:
        loaded = load_config(config)
    except ConfigFileError as exc:
        for issue in exc.issues:
            typer.secho(str(issue), fg=typer.colors.RED, err=True)
        typer.secho(f"{len(exc.issues)} problem(s) found", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{config}: OK ({len(loaded.personas)} personas, {len(loaded.deployments)} deployments, "
        f"{len(loaded.providers)} providers)"
    )
