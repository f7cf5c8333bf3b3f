"""``GET /costs``: spend from the ledger, grouped and filtered like ``ep costs``.

The master key (or open loopback mode) sees all spend; a virtual key sees only its own.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from ...errors import ConfigurationError, InvalidRequestError
from ...money.ledger import costs_to_csv
from ...money.report import spend
from ..calls import principal_of
from ..responses import error_responses, json_response
from . import _chat

router = APIRouter(tags=["Costs"])


class CostGroup(BaseModel):
    group: str | None
    cost_usd: float
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class CostReport(BaseModel):
    total_usd: float
    requests: int
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    by: str | None = None
    groups: list[CostGroup]


@router.get(
    "/costs",
    response_model=CostReport,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
               **error_responses(statuses=(400, 401))},
    summary="Spend (one ledger row per upstream attempt), totals and groups",
)
async def costs(
    request: Request,
    by: Literal["persona", "provider", "model", "key", "team", "deployment", "run", "session", "day"] | None = Query(
        None, description="group rows by this field"),
    since: str | None = Query(None, description="YYYY-MM-DD or ISO date-time (UTC), inclusive"),
    until: str | None = Query(None, description="YYYY-MM-DD (that day included) or ISO date-time, exclusive"),
    status: str | None = Query(None, description="ok, error, cancelled or partial (comma-separated)"),
    format: Literal["json", "csv"] = Query("json", description="json (default) or csv"),
) -> Response:
    gw = _chat.gateway(request)
    meter = gw.client.meter
    if meter is None or meter.ledger is None:
        raise ConfigurationError("this gateway keeps no ledger")
    principal = principal_of(request)
    where = {"key": principal.key_id} if principal.kind == "virtual" and principal.key_id else None
    try:
        result = await spend(meter.ledger, by=by, since=since, until=until, status=status, where=where)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    if format == "csv":
        return Response(costs_to_csv(result), media_type="text/csv")
    return json_response(result)
