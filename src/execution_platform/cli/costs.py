"""``ep costs``: spend from the ledger (the same rows and grouping as the gateway's ``GET /costs``)."""

from __future__ import annotations

import json
from typing import Any

import typer

from .app import app


@app.command()
def costs(
    by: str | None = typer.Option(None, "--by", help="persona, provider, model, key, team, deployment, run, session or day"),
    since: str | None = typer.Option(None, "--since", help="YYYY-MM-DD or ISO date-time (UTC), inclusive"),
    until: str | None = typer.Option(None, "--until", help="YYYY-MM-DD (that day included) or ISO date-time"),
    status: str | None = typer.Option(None, "--status", help="ok, error, cancelled or partial (comma-separated)"),
    output: str = typer.Option("table", "--format", help="table, json or csv"),
) -> None:
    """Show spend from the ledger in EP_DATABASE_URL (default: ep.db in the working directory)."""
    from ..config.settings import Settings
    from ..money.ledger import Ledger, costs_to_csv
    from ..money.report import spend_sync
    from ..storage import create_engine_from_url, migrate

    if output not in ("table", "json", "csv"):
        raise typer.BadParameter("--format must be table, json or csv")
    engine = create_engine_from_url(Settings().resolved_database_url())
    try:
        migrate(engine)  # an empty or older database reads as an empty ledger, not an error
        result = spend_sync(Ledger(engine), by=by, since=since, until=until, status=status)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        engine.dispose()
    if output == "json":
        typer.echo(json.dumps(result, indent=2, default=str))
    elif output == "csv":
        typer.echo(costs_to_csv(result), nl=False)
    else:
        _table(result)


def _usd(value: float) -> str:
    return f"${value:,.6f}"


def _table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    by = result.get("by")
    table = Table(title=f"Spend by {by}" if by else "Spend", title_justify="left")
    table.add_column(by or "", style="bold")
    for name in ("cost (USD)", "requests", "input tokens", "output tokens"):
        table.add_column(name, justify="right")
    rows = result["groups"] if by else []
    for row in rows:
        table.add_row(str(row["group"]) if row["group"] is not None else "-", _usd(row["cost_usd"]),
                      f"{row['requests']:,}", f"{row['input_tokens']:,}", f"{row['output_tokens']:,}")
    if rows:
        table.add_section()
    table.add_row("total", _usd(result["total_usd"]), f"{result['requests']:,}", f"{result['input_tokens']:,}",
                  f"{result['output_tokens']:,}", style="bold")
    Console().print(table)
