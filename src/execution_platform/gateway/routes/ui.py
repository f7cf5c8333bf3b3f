"""``/ui``: the spend and health dashboard, and the one JSON document it polls.

The page and its assets are static files shipped in the package (no CDN, nothing to build) and are
served without a key; the page asks for a key, keeps it in ``sessionStorage`` and calls
``/ui/api/overview`` with it as a Bearer token. The master key (or open loopback mode) sees everything;
a virtual key sees only its own spend, budget and requests. Spend comes from the ledger's daily roll-up
and ``/costs`` machinery, so the page stays fast at millions of ledger rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ...config.availability import configured_providers
from ...errors import ConfigurationError, InvalidRequestError, NotFoundError
from ...money.report import parse_time
from ..calls import principal_of
from ..responses import error_responses, json_response
from . import _chat

router = APIRouter(tags=["Dashboard"])

ASSETS = Path(__file__).resolve().parent.parent / "ui"
FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
GROUPS = ("persona", "provider", "model")


@router.get("/ui", include_in_schema=False)
async def page() -> Response:
    return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-cache"})


@router.get("/ui/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    media = FILES.get(name)
    if media is None:
        raise NotFoundError(f"no asset {name!r}")
    return FileResponse(ASSETS / name, media_type=media, headers={"cache-control": "no-cache"})


@router.get(
    "/ui/api/overview",
    responses=error_responses(statuses=(400, 401)),
    summary="Everything the dashboard shows, in one document (scoped to the caller's key)",
)
async def overview(
    request: Request,
    group: str = Query("persona", description="persona, provider or model: how the spend chart is stacked"),
    since: str | None = Query(None, description="YYYY-MM-DD (default: 13 days before until)"),
    until: str | None = Query(None, description="YYYY-MM-DD, included (default: today, UTC)"),
) -> Response:
    gw = _chat.gateway(request)
    meter = gw.client.meter
    if meter is None or meter.ledger is None:
        raise ConfigurationError("this gateway keeps no ledger")
    if group not in GROUPS:
        raise InvalidRequestError(f"'group' must be one of {', '.join(GROUPS)}", param="group")
    try:
        end = parse_time(until, end=True) or _today() + timedelta(days=1)
        start = parse_time(since) or end - timedelta(days=14)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    principal = principal_of(request)
    admin = principal.kind != "virtual"
    where = None if admin else {"key": principal.key_id or ""}
    ledger = meter.ledger

    def spend() -> dict[str, Any]:
        doc: dict[str, Any] = {
            "series": ledger.series_sync(group, since=start, until=end, where=where),
            "totals": ledger.costs_sync(None, since=start, until=end, where=where),
            "top": {by: ledger.costs_sync(by, since=start, until=end, where=where)["groups"][:10]
                    for by in (("key", "team", "session") if admin else ("session",))},
            "recent": ledger.recent_sync(25, where=where),
        }
        return doc

    doc = await asyncio.to_thread(spend)
    doc.update(
        scope="all" if admin else "key",
        key_id=None if admin else principal.key_id,
        group=group,
        since=start.date().isoformat(),
        until=(end - timedelta(days=1)).date().isoformat(),
        budgets=await _budgets(gw, meter, principal, admin),
    )
    if admin:
        doc["live"] = gw.observer.live()
        doc["providers"] = _providers(gw)
    return json_response(doc)


def _today() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)


async def _budgets(gw: Any, meter: Any, principal: Any, admin: bool) -> list[dict[str, Any]]:
    """Each budget with what its current period has spent (from the budget backend, not a scan)."""
    if meter.budgets is None:
        return []
    from ..money import key_budgets

    items: list[Any] = []
    if admin:
        policy = meter.policy(gw.client.config or gw.config)
        items += [*policy.persona_budgets.values(), *policy.team_budgets.values()]
        for record in gw.keys.list()[:200]:
            if record.budget_usd is not None and not record.revoked:
                items += key_budgets(record.id, record.budget_usd, record.budget_period)
    else:
        items += list(principal.budgets)
    out = []
    for budget in items:
        spent, held = await meter.budgets.usage(budget)
        out.append({
            "scope": budget.scope, "name": budget.name, "period": budget.period, "limit_usd": budget.limit_usd,
            "spent_usd": spent, "held_usd": held,
            "used_pct": round(100 * spent / budget.limit_usd, 2) if budget.limit_usd else None,
        })
    return out


def _providers(gw: Any) -> dict[str, Any]:
    """Configured providers and the state of every circuit breaker of this process."""
    providers = {name: {"configured": ok} for name, ok in configured_providers(gw.settings, gw.config).items()}
    router = gw.client.router
    breakers = getattr(router, "_breakers", None) or {}
    return {"providers": providers,
            "breakers": [{"target": target, "state": breaker.state} for target, breaker in sorted(breakers.items())]}
