"""``ep top``: the dashboard's numbers in the terminal, refreshed live (or printed once).

It reads the same document as ``/ui`` (``GET /ui/api/overview``) from a running gateway, so it shows
what that key may see: everything with the master key, its own spend with a virtual key.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import typer

from .app import app


def fetch(url: str, key: str | None, group: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{url.rstrip('/')}/ui/api/overview?group={group}")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _usd(value: float | None) -> str:
    return f"${(value or 0.0):,.4f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def render(doc: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table

    totals = doc["totals"]
    who = "all spend" if doc["scope"] == "all" else f"key {doc['key_id']}"
    head = Table.grid(padding=(0, 3))
    head.add_row(f"[bold]{who}[/] {doc['since']} .. {doc['until']}", f"spend [bold]{_usd(totals['total_usd'])}[/]",
                 f"requests [bold]{totals['requests']:,}[/]",
                 f"tokens {totals['input_tokens']:,} in / {totals['output_tokens']:,} out")
    parts: list[Any] = [head]
    live = doc.get("live")
    if live:
        errors = ", ".join(f"{d} {n}" for d, n in live["errors"].items()) or "none"
        row = Table.grid(padding=(0, 3))
        row.add_row(f"req/s [bold]{live['rps']:.2f}[/]",
                    f"latency p50/p99 {_ms(live['latency_ms']['p50'])} / {_ms(live['latency_ms']['p99'])}",
                    f"overhead p50/p99 {_ms(live['overhead_ms']['p50'])} / {_ms(live['overhead_ms']['p99'])}",
                    f"errors {errors}")
        parts.append(row)
    spend: dict[str, float] = {}
    for point in doc["series"]:
        name = point["group"] or "(none)"
        spend[name] = spend.get(name, 0.0) + point["cost_usd"]
    by = Table(title=f"spend by {doc['group']}", title_justify="left")
    by.add_column(doc["group"])
    by.add_column("spend", justify="right")
    for name, usd in sorted(spend.items(), key=lambda item: -item[1])[:10]:
        by.add_row(name, _usd(usd))
    parts.append(by)
    for name, groups in doc["top"].items():
        table = Table(title=f"top {name}s", title_justify="left")
        table.add_column(name)
        table.add_column("spend", justify="right")
        table.add_column("requests", justify="right")
        for g in groups[:5]:
            table.add_row(str(g["group"] or "(none)"), _usd(g["cost_usd"]), f"{g['requests']:,}")
        parts.append(table)
    if doc["budgets"]:
        budgets = Table(title="budgets", title_justify="left")
        for column in ("budget", "period", "spent", "limit", "used"):
            budgets.add_column(column, justify="right" if column in ("spent", "limit", "used") else "left")
        for b in doc["budgets"]:
            pct = b["used_pct"] or 0.0
            style = "red" if pct >= 100 else "yellow" if pct >= 80 else None
            budgets.add_row(f"{b['scope']} {b['name']}", b["period"], _usd(b["spent_usd"]), _usd(b["limit_usd"]),
                            f"{pct:.1f}%", style=style)
        parts.append(budgets)
    recent = Table(title="recent requests", title_justify="left")
    for column in ("time", "model", "status", "latency", "tokens", "cost"):
        recent.add_column(column, justify="right" if column in ("latency", "tokens", "cost") else "left")
    for r in doc["recent"][:10]:
        recent.add_row(r["ts"][11:19], f"{r['provider']}/{r['model']}", r["status"], _ms(r["latency_ms"]),
                       f"{r['input_tokens']}/{r['output_tokens']}", _usd(r["cost_usd"]))
    parts.append(recent)
    return Group(*parts)


@app.command()
def top(
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="The gateway."),
    key: str | None = typer.Option(None, "--key", help="Gateway key (default: EP_MASTER_KEY)."),
    group: str = typer.Option("persona", "--group", help="persona, provider or model"),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="Seconds between refreshes."),
    once: bool = typer.Option(False, "--once", help="Print once and exit."),
) -> None:
    """Live spend and health of a running gateway (the numbers of its /ui dashboard)."""
    from rich.console import Console
    from rich.live import Live

    key = key or os.environ.get("EP_MASTER_KEY")
    console = Console()

    def snapshot() -> Any:
        try:
            return render(fetch(url, key, group))
        except urllib.error.HTTPError as exc:
            return f"[red]{url}: HTTP {exc.code}[/] (is the key right?)"
        except (urllib.error.URLError, OSError) as exc:
            return f"[red]{url}: {exc}[/]"

    if once:
        console.print(snapshot())
        return
    with Live(snapshot(), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(snapshot())
        except KeyboardInterrupt:
            pass
