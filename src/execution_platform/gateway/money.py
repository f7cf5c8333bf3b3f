"""Money in the gateway: the meter behind the app, and who pays for each request.

The app opens one :class:`~execution_platform.money.meter.Meter` (ledger on ``EP_DATABASE_URL``,
budgets and rate limits in Redis with ``EP_REDIS_URL``, else in-process), migrates at start-up and
closes it at shutdown; the app's ``Client`` is built with it. Per request, :func:`bind` builds the
payer (a ``CallContext``) that the call hands to the client explicitly: the request id (so ledger rows
match ``x-ep-request-id``), the virtual key's budget (reserved per attempt) and its RPM/TPM (counted
once per request by the client). Persona, team and deployment budgets/limits come from the
configuration inside the client (see ``money.meter``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ..model import ChatRequest
from ..money.budgets import Budget
from ..money.meter import Meter
from ..money.metering import CallContext
from ..money.ratelimit import RateLimit
from ..storage.keys import KeyRepository, KeyStore

if TYPE_CHECKING:
    from ..config.schema import Config
    from ..config.settings import Settings
    from .observe import Observer


def open_meter(settings: Settings, config: Config | None, keys: KeyStore) -> Meter:
    """The app's meter, to build its client with (lazy: nothing is connected before :func:`start`).

    It shares the key store's database engine when the keys are in SQL."""
    return Meter.from_settings(settings, config, engine=keys.engine if isinstance(keys, KeyRepository) else None)


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


def bind(
    request: Request, principal: Any, chat: ChatRequest, session_id: str | None = None, observer: Observer | None = None
) -> CallContext:
    """This request's payer, for the call to hand to the client; also attached to the request's state,
    where the middleware reads its timing and outcome. ``observer``: the gateway's, when the caller
    holds it (else looked up through the app)."""
    state = request.scope.setdefault("state", {})
    if observer is None:
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
