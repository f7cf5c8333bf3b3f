"""``/metrics`` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...errors import PermissionDeniedError
from ..calls import principal_of
from ..responses import error_responses
from . import _chat

router = APIRouter(tags=["Operations"])


@router.get(
    "/metrics",
    responses={200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
               **error_responses(statuses=(401, 403))},
    summary="Prometheus metrics (master key, or a key with the 'metrics' scope)",
)
async def metrics(request: Request) -> Response:
    """Gateway-wide counters (every key's traffic), so a virtual key needs the ``metrics`` scope."""
    if not principal_of(request).has_scope("metrics"):
        raise PermissionDeniedError("this key may not read /metrics (it needs the 'metrics' scope)",
                                    code="scope_required")
    from prometheus_client import CONTENT_TYPE_LATEST

    from ..metrics import exposition

    gw = _chat.gateway(request)
    gw.observer.refresh(gw)
    await gw.observer.refresh_budgets(gw)
    return Response(exposition(gw.metrics), media_type=CONTENT_TYPE_LATEST)
