"""``/metrics`` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import _chat

router = APIRouter(tags=["Operations"])


@router.get(
    "/metrics",
    responses={200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from ..metrics import exposition

    gw = _chat.gateway(request)
    gw.observer.refresh(gw)
    await gw.observer.refresh_budgets(gw)
    return Response(exposition(gw.metrics), media_type=CONTENT_TYPE_LATEST)
