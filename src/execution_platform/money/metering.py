"""Metering: a :class:`Provider` wrapper that makes every call pay its way.

For one call, :class:`MeteredProvider` (wrapping any provider) does, in order:

1. a budget reservation of the call's worst-case cost (prompt upper bound + max output tokens at the
   model's prices) on every :class:`Budget` that applies -> 402 ``BudgetExceededError``;
2. rate limits (RPM/TPM) for every :class:`RateLimit` in ``limits`` -> 429 ``RateLimitExceeded``
   (the hold of step 1 is released); the inner provider is never called when either check fails,
   and the raised error is marked ``before_upstream``;
3. the inner ``chat``, ``embed`` or ``stream`` (an embeddings call has no output: its worst case
   is its input, and its input tokens are estimated when the upstream reports none);
4. on EVERY way out (success, error, timeout, cancellation, a consumer closing the stream early): the
   cost from the final usage (a provider-reported ``cost_usd`` wins, on a response or on a stream's
   final ``UsageEvent``), the budget settlement and token-count correction, and the ledger row,
   committed before the call returns. A second cancellation cannot skip this bookkeeping: the row
   is queued before anything can be awaited, and a settlement that must wait (Redis) runs in a
   shielded task.

Who pays and under which limits is a :class:`CallContext`: the per-request part (request id, the
virtual key's budget) is the payer, made current for the call with ``with metering.call_context(ctx):
...`` (a context variable, so it crosses routing/fallback layers untouched; ``Client`` does this
itself for the ``payer=`` it is given, see ``money.meter``), the per-target part (deployment, its
limits, persona/team budgets) comes from the resolver ``context=lambda request: ...`` given at
construction; both are merged.
``ctx.request_limits`` are NOT checked here: they are counted once per request by ``money.meter``.
Attribution not given there comes from ``request.metadata`` (key_id, team, persona, run_id). After
the call the same object holds the outcome: ``ctx.cost_usd``, ``ctx.rate_headers`` (``x-ratelimit-*``
values), ``ctx.status``, ``ctx.tokens`` and ``ctx.attempts``. Every metered call made under one scoped context shares its ``request_id`` and gets
the next attempt number, so a request retried or falling back over several providers has one ledger
row per attempt under one id.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import EPError
from ..model import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    StartEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
    WireFrame,
)
from ..providers.base import Provider, WrapperProvider
from .budgets import Budget, BudgetBackend, Reservation
from .ledger import Ledger, LedgerRow, Status, utcnow
from .pricing import PriceBook
from .ratelimit import Lease, RateHeaders, RateLimit, RateLimiter
from .tokens import (
    embedding_tokens_estimate,
    estimate_text_tokens,
    input_tokens_upper_bound,
    prompt_tokens_estimate,
)

DEFAULT_MAX_OUTPUT_TOKENS = 32_768
MeteredRequest = ChatRequest | EmbeddingRequest  # what a metered attempt serves: chat, or embeddings
R = TypeVar("R")


@dataclass
class CallContext:
    """Inputs (who pays, which limits) and, after the call, its outcome."""

    budgets: Sequence[Budget] = ()
    limits: Sequence[RateLimit] = ()  # checked on EVERY metered attempt (e.g. a deployment's limits)
    request_limits: Sequence[RateLimit] = ()  # counted ONCE per request by its owner (money.meter), never here
    request_id: str | None = None
    deployment: str | None = None
    key_id: str | None = None
    team: str | None = None
    persona: str | None = None
    run_id: str | None = None
    session_id: str | None = None  # cost attribution only (X-EP-Session-Id or a client's own session id)
    max_output_tokens: int | None = None  # used when the request sets no max_tokens
    # Told about every attempt's ledger row as it is settled (the gateway's metrics and spans); it
    # must be cheap and must not raise: it runs on every upstream attempt.
    on_attempt: Callable[[LedgerRow, float], None] | None = None
    # outcome (of the latest metered attempt made under this context)
    attempts: int = 0  # metered upstream attempts so far (retries/fallbacks each count); the row's attempt
    cost_usd: float | None = None
    status: Status | None = None
    rate_headers: RateHeaders = field(default_factory=RateHeaders)
    reserved_usd: float | None = None
    tokens: int = 0  # input + output tokens of every attempt so far (settles request-level TPM)
    upstream_calls: int = 0  # attempts admitted past the leaf's checks (0: refused before any upstream call)
    # Timing (``time.perf_counter`` values) so the gateway can tell its own time from the upstream's:
    # ``upstream_s`` is the upstream time up to the latest first event (or the end of a failed or
    # non-streamed attempt); ``upstream_open`` is when the still-uncounted part of a running attempt began.
    upstream_s: float = 0.0
    upstream_open: float | None = None
    first_token_at: float | None = None  # first content event of the serving stream
    last_token_at: float | None = None
    token_events: int = 0
    # what the upstream answered (for traces): its response id, model and finish reason
    response_id: str | None = None
    response_model: str | None = None
    finish_reason: str | None = None

    def upstream_seconds(self, now: float) -> float:
        """Upstream time so far, counting a running attempt that has not produced its first event yet."""
        open_since = self.upstream_open
        return self.upstream_s + (now - open_since if open_since is not None else 0.0)

    def merged(self, other: CallContext | None) -> CallContext:
        """This context with ``other``'s budgets/limits added and its unset fields filled from ``other``.

        A copy of the instance dict rather than ``dataclasses.replace`` (which runs ``__init__`` again),
        and ``dict.copy`` rather than an update of the new object's own (a third of the cost): it is
        made for every metered attempt."""
        if other is None:
            return self
        out = object.__new__(type(self))
        values = out.__dict__ = self.__dict__.copy()
        # Joined only when ``other`` adds some: otherwise this side's own sequence is shared (never changed in place).
        if other.budgets:
            values["budgets"] = [*self.budgets, *other.budgets]
        if other.limits:
            values["limits"] = [*self.limits, *other.limits]
        if other.request_limits:
            values["request_limits"] = [*self.request_limits, *other.request_limits]
        theirs = other.__dict__
        for name in _FILLED:
            if values[name] is None:
                values[name] = theirs[name]
        return out


_FILLED = ("request_id", "deployment", "key_id", "team", "persona", "run_id", "session_id", "max_output_tokens",
           "on_attempt")


_BLANK = CallContext()  # never changed: merged() builds a new object from it
_current: ContextVar[CallContext | None] = ContextVar("ep_call_context", default=None)


def current_context() -> CallContext | None:
    """The context made current by :func:`call_context`, if any (a ``Client`` call's default payer)."""
    return _current.get()


class call_context:
    """Make ``ctx`` apply to metered calls made inside the block (same task and its children).

    A class rather than a generator-based context manager: a stream enters it around every event,
    and one object may be entered again after each exit (never nested)."""

    __slots__ = ("ctx", "token")

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.token: Token[CallContext | None] | None = None

    def __enter__(self) -> CallContext:
        self.token = _current.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _current.reset(self.token)
            self.token = None


class _Call:
    """One metered attempt in flight (a plain slotted class: one is made per upstream attempt)."""

    __slots__ = ("attempt", "ctx", "first_seen", "lease", "max_output", "output_text", "reported_cost", "request",
                 "reservation", "scoped", "started", "ttft_ms", "usage")

    def __init__(self, ctx: CallContext, request: MeteredRequest, scoped: CallContext | None, attempt: int) -> None:
        self.ctx = ctx
        self.request = request
        self.scoped = scoped  # the caller's object, which receives the outcome too
        self.attempt = attempt
        self.max_output: int | None = None  # the output cap held for; worked out when needed
        self.lease: Lease | None = None
        self.reservation: Reservation | None = None
        self.started = 0.0  # perf_counter when admitted
        self.ttft_ms: float | None = None
        self.output_text: list[str] = []
        self.usage: Usage | None = None
        self.reported_cost: float | None = None  # the provider's own price from the stream's UsageEvent
        self.first_seen = False  # the upstream's first event arrived (its wait is counted in upstream_s)


class MeteredProvider(WrapperProvider):
    """Wraps ``inner`` with rate limits, budget reservations, costing and the ledger."""

    def __init__(
        self,
        inner: Provider,
        *,
        ledger: Ledger | None = None,
        prices: PriceBook | None = None,
        budgets: BudgetBackend | None = None,
        limiter: RateLimiter | None = None,
        context: Callable[[MeteredRequest], CallContext | None] | None = None,
        default_max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        super().__init__(inner)
        self.ledger = ledger
        self.prices = prices or PriceBook()
        self.budgets = budgets
        self.limiter = limiter
        self.resolve = context
        self.default_max_output_tokens = default_max_output_tokens

    # -- admission -------------------------------------------------------------------------------
    def _context(self, request: MeteredRequest) -> tuple[CallContext, CallContext | None]:
        scoped = _current.get()
        resolved = self.resolve(request) if self.resolve else None
        if scoped is not None:
            ctx = scoped.merged(resolved)
        elif resolved is not None:
            ctx = _BLANK.merged(resolved)  # a fresh object: the resolver may hand out one it keeps
        else:
            ctx = CallContext()
        meta = request.metadata
        ctx.key_id = ctx.key_id or meta.key_id
        ctx.team = ctx.team or meta.team
        ctx.persona = ctx.persona or meta.persona
        ctx.run_id = ctx.run_id or meta.run_id
        ctx.request_id = ctx.request_id or new_request_id()
        if scoped is not None:
            scoped.request_id = ctx.request_id
        return ctx, scoped

    def _max_output(self, ctx: CallContext, request: ChatRequest) -> int:
        output_cap = getattr(self.inner, "output_cap", None)
        cap = output_cap(request) if output_cap is not None else request.max_tokens
        if cap is not None:  # what will cross, after pass-through rules and the adapter's own default
            return cap
        if ctx.max_output_tokens is not None:
            return ctx.max_output_tokens
        return self.inner.capabilities(request.model).max_output_tokens or self.default_max_output_tokens

    def _call_max_output(self, call: _Call) -> int:
        """The attempt's output cap (worked out once, only when a hold or an estimate needs it)."""
        if call.max_output is None:
            request = call.request
            # An embeddings call produces no output tokens: its worst case is its input alone.
            call.max_output = self._max_output(call.ctx, request) if isinstance(request, ChatRequest) else 0
        return call.max_output

    async def _admit(self, request: MeteredRequest) -> _Call:
        call = self._call(request)
        if self._checked(call.ctx):
            await self._check(call)
        self._start(call)
        return call

    def _call(self, request: MeteredRequest) -> _Call:
        """The attempt's state: who pays, under which limits, its attempt number (no await)."""
        ctx, scoped = self._context(request)
        attempt = 1
        if scoped is not None:
            scoped.attempts += 1
            attempt = scoped.attempts
        return _Call(ctx, request, scoped, attempt)

    def _checked(self, ctx: CallContext) -> bool:
        """Whether a budget or a rate limit applies to this attempt (most have neither: no await then)."""
        return (self.budgets is not None and bool(ctx.budgets)) or (self.limiter is not None and bool(ctx.limits))

    async def _check(self, call: _Call) -> None:
        """The budget hold, then the attempt's rate limits; a refusal is marked ``before_upstream``."""
        ctx, scoped, request = call.ctx, call.scoped, call.request
        check_budgets = self.budgets is not None and bool(ctx.budgets)
        check_limits = self.limiter is not None and bool(ctx.limits)
        prompt_bound = input_tokens_upper_bound(request)
        try:
            # Budget first: a request refused for money must not use up the deployment's rate limit
            # (a hold is released exactly, an admission into a rate window cannot be taken back).
            if check_budgets and self.budgets is not None:
                worst = self.prices.worst_case_cost(
                    self.name, request.model, prompt_bound, self._call_max_output(call), deployment=ctx.deployment
                )
                call.reservation = await self.budgets.reserve(ctx.budgets, worst)
                ctx.reserved_usd = worst
                if scoped is not None:
                    scoped.reserved_usd = worst
            if check_limits and self.limiter is not None:
                try:
                    call.lease = await self.limiter.acquire(ctx.limits, tokens=prompt_bound)
                except BaseException:
                    if call.reservation is not None and self.budgets is not None:
                        await self.budgets.release(call.reservation)
                    raise
                for target in (ctx, scoped):
                    if target is not None:
                        target.rate_headers = target.rate_headers.merge(call.lease.headers)
        except EPError as exc:
            # Refused here, before any upstream call: routing must not count it against the upstream
            # (breakers) nor report it as an upstream attempt.
            exc.before_upstream = True  # type: ignore[attr-defined]
            raise

    @staticmethod
    def _start(call: _Call) -> None:
        """Admitted: the upstream's time starts now."""
        call.started = time.perf_counter()
        scoped = call.scoped
        if scoped is not None:
            scoped.upstream_calls += 1
            scoped.upstream_open = call.started

    # -- completion ------------------------------------------------------------------------------
    def _close(
        self, call: _Call, status: Status, usage: Usage, reported_cost: float | None, error: BaseException | None
    ) -> tuple[float, LedgerRow]:
        """The attempt's cost and ledger row, and its outcome reported to the contexts (no await)."""
        ctx, request = call.ctx, call.request
        ended = time.perf_counter()
        scoped = call.scoped
        if scoped is not None and not call.first_seen:
            scoped.upstream_s += ended - call.started
            scoped.upstream_open = None
        cost = reported_cost
        if cost is None:
            cost = self.prices.cost(self.name, request.model, usage, deployment=ctx.deployment)
        ctx.cost_usd, ctx.status = cost, status
        if scoped is not None:
            scoped.cost_usd, scoped.status = cost, status
            scoped.tokens += usage.input_tokens + usage.output_tokens
        # Positional, in the row's field order (``ledger.ROW_FIELDS``, pinned by a test): a row per
        # attempt, and the keyword form costs twice the construction itself.
        row = LedgerRow(
            ctx.request_id or "", self.name, request.model, status, call.attempt, utcnow(),
            ctx.key_id, ctx.team, ctx.persona, ctx.run_id, ctx.session_id, ctx.deployment,
            usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens,
            usage.reasoning_tokens, cost, (ended - call.started) * 1000, call.ttft_ms,
            None if error is None else error_type(error),
        )
        return cost, row

    async def _settle(self, call: _Call, cost: float, usage: Usage) -> None:
        """The budget settlement and the token-count correction (in-process backends never suspend)."""
        if call.reservation is not None and self.budgets is not None:
            await self.budgets.settle(call.reservation, cost)
        if call.lease is not None and self.limiter is not None:
            await self.limiter.settle(call.lease, usage.input_tokens + usage.output_tokens)

    def _commit(self, call: _Call, row: LedgerRow) -> Awaitable[None] | None:
        """Tell the observer, queue the row (before any await) and return what its commit resolves."""
        if call.ctx.on_attempt is not None:
            call.ctx.on_attempt(row, call.started)
        ledger = self.ledger
        if ledger is None:
            return None
        return ledger.submit(row) if ledger.started else ledger.record(row)

    async def _finish_shielded(
        self,
        call: _Call,
        status: Status,
        usage: Usage,
        reported_cost: float | None = None,
        error: BaseException | None = None,
    ) -> float:
        """``_finish`` that a cancellation cannot cut short, without a task when none is needed.

        The settlement is driven by hand: when it completes without suspending (in-process budgets
        and limits) the row is queued at once, and from then on a cancellation can only stop the
        wait for its commit, never the commit itself. A settlement that suspends (Redis) is finished,
        together with the row, in a shielded task as before."""
        cost, row = self._close(call, status, usage, reported_cost, error)
        if call.reservation is None and call.lease is None:  # nothing to settle: the row goes at once
            committed = self._commit(call, row)
            if committed is not None:
                await committed
            return cost
        settling = self._settle(call, cost, usage)
        try:
            waiting = settling.send(None)
        except StopIteration:
            committed = self._commit(call, row)
            if committed is not None:
                await committed
            return cost
        await asyncio.shield(asyncio.ensure_future(self._settle_rest(settling, waiting, call, row)))
        return cost

    async def _settle_rest(
        self, settling: Coroutine[object, object, None], waiting: object, call: _Call, row: LedgerRow
    ) -> None:
        await _drive(settling, waiting)
        committed = self._commit(call, row)
        if committed is not None:
            await committed

    # -- Provider --------------------------------------------------------------------------------
    async def _failed(self, call: _Call, exc: BaseException) -> None:
        """Settle an attempt that ended without an answer: cancelled (the caller went away) or failed."""
        status: Status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        await self._finish_shielded(call, status, Usage(), error=exc)

    async def _answer(self, call: _Call, pending: Awaitable[R]) -> R:
        """Await an admitted whole-answer call; a failure or cancellation settles the attempt here (an
        answer is settled by the caller, from its usage)."""
        try:
            return await pending
        except BaseException as exc:
            await self._failed(call, exc)
            raise

    async def chat(self, request: ChatRequest) -> ChatResponse:
        # ``_admit`` and ``_answer`` written out: the hot path, one coroutine frame instead of three.
        call = self._call(request)
        if self._checked(call.ctx):
            await self._check(call)
        self._start(call)
        try:
            response = await self.inner.chat(request)
        except BaseException as exc:
            await self._failed(call, exc)
            raise
        if call.scoped is not None:
            _answered(call.scoped, response.id, response.model, response.finish_reason)
        if call.reservation is None and call.lease is None:
            # ``_finish_shielded`` written out for an attempt with nothing to settle: the row is queued
            # before the only await, which can then be cancelled without losing it.
            cost, row = self._close(call, "ok", response.usage, response.cost_usd, None)
            committed = self._commit(call, row)
            if committed is not None:
                await committed
        else:
            cost = await self._finish_shielded(call, "ok", response.usage, response.cost_usd)
        response.cost_usd = cost
        return response

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Held, called and settled like ``chat``: the same reservation, limits and ledger row, with
        the input tokens estimated when the upstream reports none (Gemini's embeddings)."""
        call = await self._admit(request)
        response = await self._answer(call, self.inner.embed(request))
        usage = response.usage
        if not usage.input_tokens:
            usage = Usage(input_tokens=embedding_tokens_estimate(request))
        response.cost_usd = await self._finish_shielded(call, "ok", usage, response.cost_usd)
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        # ``_admit`` written out, as in ``chat``: no coroutine when no budget or limit applies.
        call = self._call(request)
        if self._checked(call.ctx):
            await self._check(call)
        self._start(call)
        status: Status = "cancelled"
        error: BaseException | None = None
        try:
            # Provider.stream is typed AsyncIterator; every implementation is an async generator,
            # closed here on every way out (what ``contextlib.aclosing`` does, without its coroutines).
            events = self.inner.stream(request)
            try:
                async for event in events:
                    self._observe(call, event)
                    yield event
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            status = "ok"
        except (asyncio.CancelledError, GeneratorExit) as exc:
            status, error = "cancelled", exc
            raise
        except BaseException as exc:
            status, error = ("partial" if call.ttft_ms is not None else "error"), exc
            raise
        finally:
            usage = self._stream_usage(call, status)
            reported = call.reported_cost if call.usage else None
            if call.reservation is None and call.lease is None:
                # ``_finish_shielded`` written out for an attempt with nothing to settle (as in ``chat``):
                # the row is queued before the only await.
                _, row = self._close(call, status, usage, reported, error)
                committed = self._commit(call, row)
                if committed is not None:
                    await committed
            else:
                await self._finish_shielded(call, status, usage, reported, error)

    def _observe(self, call: _Call, event: StreamEvent) -> None:
        if not call.first_seen:
            call.first_seen = True
            scoped = call.scoped
            if scoped is not None:
                scoped.upstream_s += time.perf_counter() - call.started
                scoped.upstream_open = None
        if type(event) is WireFrame:  # the same-format path's every frame: the fewest checks first
            if not event.text:
                return  # a forwarded frame without text: the canonical events after it say what it meant
            now = time.perf_counter()
            if call.ttft_ms is None:
                call.ttft_ms = (now - call.started) * 1000
            scoped = call.scoped
            if scoped is not None:
                if scoped.first_token_at is None:
                    scoped.first_token_at = now
                scoped.last_token_at = now
                scoped.token_events += event.pieces
            call.output_text.append(event.text)
        elif isinstance(event, UsageEvent):
            call.usage = event.usage
            call.reported_cost = event.cost_usd
        elif isinstance(event, StartEvent):
            if call.scoped is not None:
                _answered(call.scoped, event.id, event.model, None)
        elif isinstance(event, WireFrame) and not event.text:
            return  # a forwarded frame without text: the canonical events after it say what it meant
        else:
            now = time.perf_counter()
            if call.ttft_ms is None:
                call.ttft_ms = (now - call.started) * 1000
            scoped = call.scoped
            if scoped is not None:
                if isinstance(event, FinishEvent):
                    scoped.finish_reason = event.reason
                elif isinstance(event, TextDelta | ThinkingDelta | ToolCallStart | ToolCallDelta | WireFrame):
                    if scoped.first_token_at is None:
                        scoped.first_token_at = now
                    scoped.last_token_at = now
                    scoped.token_events += event.pieces if isinstance(event, WireFrame) else 1
            if isinstance(event, TextDelta | ThinkingDelta | WireFrame):
                call.output_text.append(event.text)
            elif isinstance(event, ToolCallDelta):
                call.output_text.append(event.arguments)
            elif isinstance(event, ToolCallStart):
                call.output_text.append(event.name)

    def _stream_usage(self, call: _Call, status: Status) -> Usage:
        """The final usage when the stream delivered it; otherwise an estimate of the tokens so far."""
        if call.usage is not None:
            return call.usage
        if (status == "error" and call.ttft_ms is None) or not isinstance(call.request, ChatRequest):
            return Usage()
        return Usage(
            input_tokens=prompt_tokens_estimate(call.request),
            output_tokens=min(estimate_text_tokens("".join(call.output_text)), self._call_max_output(call)),
        )


async def _drive(coro: Coroutine[object, object, None], waiting: object) -> None:
    """Run to its end a coroutine driven by hand so far, now suspended on ``waiting``, as a task would."""
    while True:
        if waiting is None:
            await asyncio.sleep(0)  # it yielded bare: give the loop one turn
        else:
            waiting._asyncio_future_blocking = False  # type: ignore[attr-defined]  # taken over, as a task does
            with contextlib.suppress(BaseException):
                await waiting  # type: ignore[misc]  # the coroutine reads the outcome itself when resumed
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


def _answered(ctx: CallContext, response_id: str | None, model: str | None, finish: str | None) -> None:
    ctx.response_id, ctx.response_model, ctx.finish_reason = response_id, model, finish


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_type(error: BaseException | None) -> str | None:
    """The ledger's ``error_type`` of an attempt that ended with ``error``."""
    if error is None:
        return None
    if isinstance(error, EPError):
        return error.type
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "cancelled"
    return "internal_error"
