"""``ep keys create|list|revoke``: manage virtual keys in the configured database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from ..model.address import persona_address
from .app import app

if TYPE_CHECKING:  # sqlalchemy is imported only when a keys command runs
    from ..storage.keys import KeyRepository

keys_app = typer.Typer(help="Manage virtual keys (stored hashed; the secret is shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _repository() -> KeyRepository:
    from ..config.settings import Settings
    from ..storage.keys import open_key_repository

    return open_key_repository(Settings().resolved_database_url())


@keys_app.command("create")
def create(
    name: str | None = typer.Option(None, "--name"),
    models: str | None = typer.Option(None, "--models", help="Comma-separated models the key may use."),
    personas: str | None = typer.Option(None, "--personas", help="Comma-separated personas the key may use."),
    budget_usd: float | None = typer.Option(None, "--budget-usd"),
    budget_period: str | None = typer.Option(None, "--budget-period", help="day, week, month or total"),
    rpm: int | None = typer.Option(None, "--rpm"),
    tpm: int | None = typer.Option(None, "--tpm"),
    scopes: str | None = typer.Option(None, "--scopes", help="Comma-separated extra rights: metrics."),
) -> None:
    """Create a key and print it once, with its stored fields, as JSON."""
    try:
        record, secret = _repository().create(
            name=name, models=_split(models), personas=_split(personas), budget_usd=budget_usd,
            budget_period=budget_period, rpm=rpm, tpm=tpm, scopes=_split(scopes),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(json.dumps({**record.to_dict(), "key": secret}, indent=2))


@keys_app.command("list")
def list_keys(
    output: str = typer.Option("table", "--format", help="table or json (one JSON object per line)"),
) -> None:
    """List keys (never their secrets)."""
    if output not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    records = [record.to_dict() for record in _repository().list()]
    if output == "json":
        for record in records:
            typer.echo(json.dumps(record))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Virtual keys", title_justify="left")
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("name", no_wrap=True)
    for name in ("team", "may use", "budget", "rpm / tpm", "created", "state"):
        table.add_column(name, no_wrap=name in ("budget", "created"))
    for r in records:
        scope = ", ".join([*(r.get("models") or []), *(persona_address(p) for p in r.get("personas") or [])]) or "anything"
        budget = f"${r['budget_usd']:,.2f} / {r.get('budget_period') or 'total'}" if r.get("budget_usd") is not None else "-"
        limits = f"{r.get('rpm') or '-'} / {r.get('tpm') or '-'}"
        state = "revoked" if r.get("revoked") else "active"
        table.add_row(r["id"], r.get("name") or "", r.get("team") or "", scope, budget, limits,
                      (r.get("created_at") or "")[:10], state,
                      style="dim" if r.get("revoked") else None)
    Console().print(table)


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key id (key_…).")) -> None:
    """Revoke a key at once."""
    if not _repository().revoke(key_id):
        typer.secho(f"no active key '{key_id}'", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
