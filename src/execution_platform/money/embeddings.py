"""Embeddings pay their way too: a budget hold, the caller's rate limits and one ledger row per call.

Embedding calls do not go through the chat routing stack (no retries, no fallbacks), so the per-request
and per-attempt checks of ``money.meter`` collapse into one: the worst case (every input byte a token,
at the model's input price) is reserved on the key's and team's budgets, the key's and team's RPM/TPM
count the call once, and the row records the input tokens and their cost (0 when the price of the model
is unknown). Refusals happen before the upstream call, as for chat: 402 first, so a request refused for
money does not use up a rate-limit slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..errors import EPError
from ..model import Usage
from .ledger import LedgerRow, Status
from .meter import Meter
from .metering import CallContext, error_type, new_request_id
from .tokens import estimate_text_tokens

T = TypeVar("T")
PER_INPUT_TOKENS = 4  # separators a provider may count per input, on top of the text itself


def input_tokens_upper_bound(texts: Sequence[str]) -> int:
    """At least the tokens any provider bills for ``texts``: a BPE token is at least one byte."""
    return sum(len(text.encode("utf-8")) + PER_INPUT_TOKENS for text in texts)


def input_tokens_estimate(texts: Sequence[str]) -> int:
    """For providers whose answer has no token count (Gemini's ``batchEmbedContents``)."""
    return sum(estimate_text_tokens(text) for text in texts)


async def metered_embedding(
    meter: Meter,
    ctx: CallContext,
    *,
    provider: str,
    model: str,
    texts: Sequence[str],
    call: Callable[[], Awaitable[T]],
    tokens_of: Callable[[T], int | None],
    config: Any = None,
) -> T:
    """Run ``call`` (the upstream embeddings request) under ``ctx``'s budgets and limits, with a row.

    ``tokens_of`` reads the billed input tokens from the answer (None: estimated from ``texts``).
    ``ctx`` receives the outcome (``cost_usd``, ``status``, ``rate_headers``) like a chat call's.
    """
    if not meter._started:
        await meter.start()
    policy = meter.policy(config)
    ctx.request_id = ctx.request_id or new_request_id()
    budgets = [*ctx.budgets, *policy.budgets_for(None, ctx.team)]
    limits = [*ctx.request_limits, *policy.limits_for(None, ctx.team)]
    bound = input_tokens_upper_bound(texts)
    reservation = lease = None
    try:
        if budgets and meter.budgets is not None:
            reservation = await meter.budgets.reserve(budgets, policy.prices.worst_case_cost(provider, model, bound, 0))
        if limits and meter.limiter is not None:
            try:
                lease = await meter.limiter.acquire(limits, tokens=bound)
            except BaseException:
                if reservation is not None and meter.budgets is not None:
                    await meter.budgets.release(reservation)
                raise
            ctx.rate_headers = ctx.rate_headers.merge(lease.headers)
    except EPError as exc:
        exc.before_upstream = True  # type: ignore[attr-defined]
        raise
    started = time.perf_counter()
    ctx.upstream_open = started
    status: Status = "cancelled"
    error: BaseException | None = None
    tokens = 0
    try:
        result = await call()
        counted = tokens_of(result)
        tokens = counted if counted else input_tokens_estimate(texts)
        status = "ok"
        return result
    except asyncio.CancelledError as exc:
        error = exc
        raise
    except BaseException as exc:
        status, error = "error", exc
        raise
    finally:
        finish = _finish(meter, ctx, policy, provider, model, tokens, status, error, started, reservation, lease)
        await asyncio.shield(asyncio.ensure_future(finish))


async def _finish(
    meter: Meter, ctx: CallContext, policy: Any, provider: str, model: str, tokens: int, status: Status,
    error: BaseException | None, started: float, reservation: Any, lease: Any,
) -> None:
    ended = time.perf_counter()
    ctx.upstream_s += ended - started  # the gateway's x-ep-overhead-ms leaves this out
    ctx.upstream_open = None
    cost = policy.prices.cost(provider, model, Usage(input_tokens=tokens)) if tokens else 0.0
    ctx.cost_usd, ctx.status, ctx.tokens = cost, status, ctx.tokens + tokens
    if reservation is not None and meter.budgets is not None:
        await meter.budgets.settle(reservation, cost)
    if lease is not None and meter.limiter is not None:
        await meter.limiter.settle(lease, tokens)
    if meter.ledger is not None:
        await meter.ledger.record(
            LedgerRow(
                request_id=ctx.request_id or "",
                key_id=ctx.key_id,
                team=ctx.team,
                run_id=ctx.run_id,
                session_id=ctx.session_id,
                provider=provider,
                model=model,
                input_tokens=tokens,
                cost_usd=cost,
                latency_ms=(ended - started) * 1000,
                status=status,
                error_type=error_type(error),
            )
        )
