"""Money in the gateway: the meter behind the app, and who pays for each request.

The app opens one :class:`~execution_platform.money.meter.Meter` (ledger on ``EP_DATABASE_URL``,
budgets and rate limits in Redis with ``EP_REDIS_URL``, else in-process), migrates at start-up and
closes it at shutdown. Per request, :func:`bind` makes a ``CallContext`` current for the request's
task: the request id (so ledger rows match ``x-ep-request-id``), the virtual key's budget (reserved per
attempt) and its RPM/TPM (counted once per request by the client). Persona, team and deployment
budgets/limits come from the configuration inside the client (see ``money.meter``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ..model import ChatRequest
from ..money.budgets import Budget
from ..money.meter import Meter
from ..money.metering import CallContext, current_context, set_context
from ..money.ratelimit import RateLimit

if TYPE_CHECKING:
    from ..client import Client
    from ..config.schema import Config
    from ..config.settings import Settings
    from ..storage.keys import KeyStore


def open_meter(settings: Settings, config: Config | None, keys: KeyStore, client: Client) -> Meter | None:
    """A meter for ``client`` (lazy: nothing is connected before :func:`start`); None when the client
    already has its own meter."""
    if client.meter is not None:
        return None
    meter = Meter.from_settings(settings, config, engine=getattr(keys, "engine", None))
    client.meter = meter
    return meter


async def start(meter: Meter | None) -> None:
    if meter is not None:
        await meter.start()


async def close(meter: Meter | None) -> None:
    if meter is not None:
        await meter.aclose()


def key_budgets(key_id: str | None, budget_usd: float | None, period: str | None) -> tuple[Budget, ...]:
    if key_id is None or budget_usd is None:
        return ()
    return (Budget("key", key_id, limit_usd=float(budget_usd), period=period or "total"),)  # type: ignore[arg-type]


def key_limits(key_id: str | None, rpm: int | None, tpm: int | None) -> tuple[RateLimit, ...]:
    if key_id is None or (rpm is None and tpm is None):
        return ()
    return (RateLimit("key", key_id, rpm=rpm, tpm=tpm),)


def bind(request: Request, principal: Any, chat: ChatRequest, session_id: str | None = None) -> CallContext:
    """Make this request's payer current for the rest of the request's task (and tasks it starts), and
    attach it to the request's state, where the middleware reads its timing and outcome."""
    state = request.scope.setdefault("state", {})
    observer = request.app.state.gateway.observer
    rows: list[Any] = []
    starts: list[float] = []
    ctx = CallContext(
        request_id=state.get("request_id"),
        key_id=principal.key_id,
        team=chat.metadata.team,
        session_id=session_id,
        budgets=principal.budgets,
        request_limits=principal.limits,
        on_attempt=observer.attempt_hook(rows, starts),
    )
    state["call"] = ctx
    state["attempts"] = rows
    state["attempt_starts"] = starts
    if observer.tracer is not None:  # what the server span reports about the request
        state["request_model"] = chat.model
        state["max_tokens"] = chat.max_tokens
        if observer.capture_content:
            import orjson

            state["input_messages"] = orjson.dumps([m.model_dump(mode="json") for m in chat.messages]).decode()
    set_context(ctx)
    return ctx


def payer(request: Request, principal: Any) -> CallContext:
    """Who pays for a call outside the chat path (embeddings): the key, its team or ``X-EP-Team``."""
    from .metadata import header
    from .observe import session_of

    state = request.scope.setdefault("state", {})
    ctx = CallContext(
        request_id=state.get("request_id"),
        key_id=principal.key_id,
        team=principal.team or header(request.headers, "X-EP-Team"),
        run_id=header(request.headers, "X-EP-Run-Id"),
        session_id=session_of(request.headers),
        budgets=principal.budgets,
        request_limits=principal.limits,
    )
    state["call"] = ctx
    return ctx


def rate_headers() -> dict[str, str]:
    """``x-ratelimit-*`` of the limits the current request counted against (empty when none)."""
    ctx = current_context()
    return ctx.rate_headers.as_headers() if ctx is not None else {}
