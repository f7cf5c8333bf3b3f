"""Money wired into calls: which check runs where in the routing stack, and why.

::

    Client.send(request, payer=…)
      └ Meter.admit ─ Fallback ─ Retrying ─ Breaker ─ Endpoint ─ MeteredProvider ─ adapter
        (once per request)                                      (once per attempt)

* Who pays is a :class:`~.metering.CallContext` handed to ``Client.send`` / ``Client.send_stream`` / ``Client.embed``
  (``payer=``; the gateway builds one per HTTP request from the virtual key). Without one the payer is
  anonymous: attribution then comes from ``request.metadata`` and the configuration alone.
* Once per REQUEST (:meth:`Meter.admit`, then :meth:`Meter.release` on every way out; the client calls
  both from one helper shared by ``send``, ``send_stream`` and ``embed``): the RPM/TPM limits of the payer
  (``CallContext.request_limits``, the virtual key's), of the persona and of the team. A retry or a
  fallback is not a new request, so it does not take another unit of the caller's limit. TPM holds the
  prompt's upper bound until the request ends, then the real tokens of all its attempts.
* Once per ATTEMPT (a :class:`~.metering.MeteredProvider` at the leaf of every routing stack, right
  above the adapter, built by :meth:`Meter.leaf` when the client builds its stacks): the deployment's
  RPM/TPM (each attempt really hits that deployment), the budget reservation of the attempt's worst case
  at THIS target's prices on the key, persona and team budgets, and the ledger row with the attempt
  number and deployment. So a request over budget is refused (402) before the first upstream call, a
  fallback to a dearer model reserves at that model's prices, and every attempt settles its reservation
  on every way out. The leaves find the request's payer through :meth:`Admission.paying` (the routing
  layers in between are plain Providers and carry no payer).
* The ``x-ratelimit-*`` values of every limit counted land on the payer; the client copies them to
  ``ChatResponse.rate_limits`` or exposes them on the stream (``RoutedStream.rate_limits``).
* Refusals raised at the leaf carry ``before_upstream``: breakers do not count them as upstream
  failures and they are reported as skipped attempts.

Hot path: no database read per request. Spent-so-far is loaded from the ledger once per budget period
(single-flight) and then kept in memory or Redis; budgets and limits derived from the configuration
are built once per configuration object (a reload builds new ones) and looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceededError
from ..model import ChatRequest, EmbeddingRequest
from ..providers.base import Provider
from .budgets import Budget, BudgetBackend
from .ledger import Ledger
from .metering import CallContext, MeteredProvider, call_context
from .pricing import PriceBook
from .ratelimit import Lease, RateHeaders, RateLimit, RateLimiter, RateLimitExceeded
from .tokens import input_tokens_upper_bound


def budget_from(scope: str, name: str, conf: Any) -> Budget | None:
    """A :class:`Budget` from a config ``BudgetConfig``-like object (``usd``, ``period``, ...)."""
    if conf is None:
        return None
    return Budget(
        scope,  # type: ignore[arg-type]
        name,
        limit_usd=float(conf.usd),
        period=getattr(conf, "period", "total") or "total",
        hard=getattr(conf, "hard", True),
        thresholds=tuple(getattr(conf, "thresholds", None) or (0.8,)),
        webhook_url=getattr(conf, "webhook_url", None),
    )


def limit_from(scope: str, name: str, conf: Any) -> RateLimit | None:
    """A :class:`RateLimit` from a config ``LimitsConfig``-like object; None when it limits nothing."""
    if conf is None or (conf.rpm is None and conf.tpm is None):
        return None
    return RateLimit(scope, name, rpm=conf.rpm, tpm=conf.tpm)


@dataclass
class Policy:
    """Budgets, limits and prices derived from one configuration object (built once per config)."""

    prices: PriceBook = field(default_factory=PriceBook)
    persona_budgets: dict[str, Budget] = field(default_factory=dict)
    persona_limits: dict[str, RateLimit] = field(default_factory=dict)
    team_budgets: dict[str, Budget] = field(default_factory=dict)
    team_limits: dict[str, RateLimit] = field(default_factory=dict)
    deployment_limits: dict[str, RateLimit] = field(default_factory=dict)
    concurrency: dict[tuple[str, str], int] = field(default_factory=dict)  # (scope, name) -> max in flight

    @classmethod
    def from_config(cls, config: Any) -> Policy:
        policy = cls()
        if config is None:
            return policy
        policy.prices = PriceBook({name: p.model_dump(exclude_none=True) for name, p in config.pricing.items()})
        for name in config.personas:
            budget = budget_from("persona", name, config.persona_budget(name))
            limit = limit_from("persona", name, config.persona_limits(name))
            if budget is not None:
                policy.persona_budgets[name] = budget
            if limit is not None:
                policy.persona_limits[name] = limit
            policy._cap("persona", name, config.persona_limits(name))
        for name in getattr(config, "teams", {}) or {}:
            budget = budget_from("team", name, config.team_budget(name))
            limit = limit_from("team", name, config.team_limits(name))
            if budget is not None:
                policy.team_budgets[name] = budget
            if limit is not None:
                policy.team_limits[name] = limit
            policy._cap("team", name, config.team_limits(name))
        for dep in config.deployments:
            conf = config.deployment_limits(dep.name) if hasattr(config, "deployment_limits") else None
            limit = limit_from("deployment", dep.name, conf)
            if limit is not None:
                policy.deployment_limits[dep.name] = limit
        return policy

    def _cap(self, scope: str, name: str, conf: Any) -> None:
        cap = getattr(conf, "max_concurrent", None)
        if cap is not None:
            self.concurrency[(scope, name)] = int(cap)

    def caps_for(self, persona: str | None, team: str | None) -> list[tuple[tuple[str, str], int]]:
        found = []
        for scope, name in (("persona", persona), ("team", team)):
            if name and (scope, name) in self.concurrency:
                found.append(((scope, name), self.concurrency[(scope, name)]))
        return found

    def budgets_for(self, persona: str | None, team: str | None) -> list[Budget]:
        found = []
        if persona and (b := self.persona_budgets.get(persona)) is not None:
            found.append(b)
        if team and (b := self.team_budgets.get(team)) is not None:
            found.append(b)
        return found

    def limits_for(self, persona: str | None, team: str | None) -> list[RateLimit]:
        found = []
        if persona and (r := self.persona_limits.get(persona)) is not None:
            found.append(r)
        if team and (r := self.team_limits.get(team)) is not None:
            found.append(r)
        return found


@dataclass(slots=True)
class Admission:
    """A request admitted by :meth:`Meter.admit`; hand it back to :meth:`Meter.release` exactly once."""

    ctx: CallContext
    lease: Lease | None
    tokens_before: int
    upstream_before: int = 0  # ctx.upstream_calls at admission (the context may be reused)
    slots: list[tuple[str, str]] = field(default_factory=list)  # in-flight slots held (max_concurrent)

    def paying(self) -> contextlib.AbstractContextManager[CallContext]:
        """Make this request's payer the one the per-attempt leaves charge, for one step of the call.

        The routing layers between the client and its leaves are plain Providers (``chat(request)``)
        with no room for a payer, so it crosses them in a context variable: set here, around each step
        the client awaits (never across a ``yield``: a stream's consumer may switch tasks between
        events), and read by :class:`~.metering.MeteredProvider`. The client's calls set it nowhere else.
        """
        return call_context(self.ctx)

    def rate_limits(self) -> dict[str, str]:
        """``x-ratelimit-*`` of every limit counted so far: the request's own and its attempts'."""
        return self.ctx.rate_headers.as_headers()


class Meter:
    """The ledger, budget and rate-limit backends plus the policy of the current configuration.

    ``config`` is used when a caller passes none (the SDK without a router); with a router, the
    router's current configuration is passed in, so a reload changes budgets and limits at once.
    """

    def __init__(
        self,
        *,
        ledger: Ledger | None = None,
        budgets: BudgetBackend | None = None,
        limiter: RateLimiter | None = None,
        config: Any = None,
        engine: Any = None,
        own_engine: bool = False,
    ) -> None:
        self.ledger = ledger
        self.budgets = budgets
        self.limiter = limiter
        self.config = config
        self.engine = engine
        self._own_engine = own_engine
        self._policies: dict[int, tuple[Any, Policy]] = {}  # id(config) -> (config, its policy)
        self._default_policy = Policy.from_config(config)
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._own_redis = False  # close the backends' Redis client at aclose (opened by from_settings)
        self._in_flight: dict[tuple[str, str], int] = {}  # max_concurrent: requests running, per process

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Any, config: Any = None, *, engine: Any = None) -> Meter:
        """Ledger on ``EP_DATABASE_URL`` (default SQLite file), backends on ``EP_REDIS_URL`` (or in-process).

        Nothing is connected here: the engine is lazy and the schema is migrated by :meth:`start`.
        """
        from ..storage import create_engine_from_url
        from .backends import make_backends

        own = engine is None
        if engine is None:
            engine = create_engine_from_url(settings.resolved_database_url())
        ledger = Ledger(engine, retention_days=getattr(getattr(config, "ledger", None), "retention_days", None))
        server = getattr(config, "server", None)
        budgets, limiter = make_backends(
            getattr(settings, "redis_url", None),
            spent_loader=ledger.spent,
            reservation_ttl=getattr(server, "budget_hold_ttl", None) if getattr(settings, "redis_url", None) else None,
        )
        meter = cls(ledger=ledger, budgets=budgets, limiter=limiter, config=config, engine=engine, own_engine=own)
        meter._own_redis = True
        return meter

    async def start(self) -> None:
        """Migrate the schema (idempotent, locked across processes) and start the ledger writer."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            if self.engine is not None:
                from ..storage import migrate

                await asyncio.to_thread(migrate, self.engine)
            if self.ledger is not None:
                await self.ledger.start()
            self._started = True

    async def aclose(self) -> None:
        """Flush the ledger, close the backends; dispose the engine when this meter created it."""
        if self.ledger is not None:
            await self.ledger.aclose()
        for backend in (self.budgets, self.limiter):
            if backend is not None:
                await backend.aclose()
        if self._own_redis:
            clients = {id(c): c for c in (getattr(self.budgets, "redis", None), getattr(self.limiter, "redis", None))
                       if c is not None}
            for client in clients.values():
                with contextlib.suppress(Exception):
                    await client.aclose()
        if self._own_engine and self.engine is not None:
            self.engine.dispose()
        self._started = False

    def policy(self, config: Any = None) -> Policy:
        if config is None:
            return self._default_policy
        entry = self._policies.get(id(config))
        if entry is None or entry[0] is not config:
            if len(self._policies) >= 8:  # old configurations after reloads
                self._policies.clear()
            entry = self._policies[id(config)] = (config, Policy.from_config(config))
        return entry[1]

    # -- per attempt --------------------------------------------------------------------------------
    def leaf(self, inner: Provider, config: Any = None, deployment: str | None = None) -> MeteredProvider:
        """Wrap one adapter of a routing stack (or a directly addressed provider) for per-attempt metering."""
        policy = self.policy(config)
        dep_limit = policy.deployment_limits.get(deployment) if deployment else None
        limits = [dep_limit] if dep_limit is not None else []

        # One context per (persona, team), kept for this leaf's life (a reload builds new leaves): the
        # metered provider only reads it, merging it into the attempt's own.
        contexts: dict[tuple[str | None, str | None], CallContext] = {}

        def context(request: ChatRequest | EmbeddingRequest) -> CallContext:
            meta = request.metadata
            key = (meta.persona, meta.team)
            found = contexts.get(key)
            if found is None:
                if len(contexts) >= 1024:
                    contexts.clear()
                found = contexts[key] = CallContext(
                    deployment=deployment, limits=limits, budgets=policy.budgets_for(*key)
                )
            return found

        return MeteredProvider(
            inner,
            ledger=self.ledger,
            prices=policy.prices,
            budgets=self.budgets,
            limiter=self.limiter,
            context=context,
        )

    # -- per request --------------------------------------------------------------------------------
    async def admit(self, request: ChatRequest | EmbeddingRequest, ctx: CallContext, config: Any = None) -> Admission:
        """Count the request once against the key's, persona's and team's RPM/TPM (429 when over).

        Chat and embeddings alike (``Client.send``, ``send_stream`` and ``embed``); TPM holds the
        input's upper bound until :meth:`release`."""
        if not self._started:
            await self.start()
        admitted = self.admit_now(request, ctx, config)
        if admitted is not None:
            return admitted
        meta = request.metadata
        policy = self.policy(config)
        team = ctx.team or meta.team
        limits = [*ctx.request_limits, *policy.limits_for(meta.persona, team)]
        slots = self._take_slots(policy.caps_for(meta.persona, team))
        lease = None
        try:
            if limits and self.limiter is not None:
                lease = await self.limiter.acquire(limits, tokens=input_tokens_upper_bound(request))
                ctx.rate_headers = ctx.rate_headers.merge(lease.headers)
        except BaseException:
            self._free_slots(slots)
            raise
        return Admission(ctx, lease, ctx.tokens, ctx.upstream_calls, slots)

    def admit_now(
        self, request: ChatRequest | EmbeddingRequest, ctx: CallContext, config: Any = None
    ) -> Admission | None:
        """:meth:`admit` without a coroutine when it has nothing to wait for (the meter is started and
        no RPM/TPM applies; ``max_concurrent`` slots are taken here). None: await :meth:`admit`."""
        if not self._started:
            return None
        policy = self.policy(config)
        if not policy.concurrency and (
            self.limiter is None or not (ctx.request_limits or policy.persona_limits or policy.team_limits)
        ):
            # Nothing that applies per persona or team is configured (the usual case): no look-ups.
            return Admission(ctx, None, ctx.tokens, ctx.upstream_calls)
        meta = request.metadata
        team = ctx.team or meta.team
        if self.limiter is not None and (ctx.request_limits or policy.limits_for(meta.persona, team)):
            return None
        slots = self._take_slots(policy.caps_for(meta.persona, team))
        return Admission(ctx, None, ctx.tokens, ctx.upstream_calls, slots)

    def release_now(self, admission: Admission) -> bool:
        """:meth:`release` when it has nothing to await (no lease to settle): True when done."""
        lease = admission.lease
        if lease is None or self.limiter is None or lease.settled:
            if admission.slots:
                self._free_slots(admission.slots)
            return True
        return False

    def _take_slots(self, caps: list[tuple[tuple[str, str], int]]) -> list[tuple[str, str]]:
        """One in-flight slot on every ``max_concurrent`` that applies, or 429 taking none.

        Per process: a count of the requests this process is running (no await, so no lock needed)."""
        for key, cap in caps:
            if self._in_flight.get(key, 0) >= cap:
                raise RateLimitExceeded(
                    f"{cap} concurrent requests already running for {key[0]} {key[1]!r}",
                    retry_after=1.0,
                    headers=RateHeaders(),
                )
        for key, _ in caps:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return [key for key, _ in caps]

    def _free_slots(self, slots: list[tuple[str, str]]) -> None:
        for key in slots:
            left = self._in_flight.get(key, 0) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)
        slots.clear()

    async def release(self, admission: Admission, error: BaseException | None = None) -> None:
        """Replace the request's token estimate with the tokens its attempts really used.

        A request refused for budget (402) before any upstream call gets its admission back whole:
        it must not use up a slot of the caller's RPM (nor hold tokens) for a call never made."""
        if self.release_now(admission):
            return
        self._free_slots(admission.slots)
        lease = admission.lease
        assert lease is not None and self.limiter is not None
        if isinstance(error, BudgetExceededError) and admission.ctx.upstream_calls == admission.upstream_before:
            await asyncio.shield(asyncio.ensure_future(self.limiter.refund(lease)))
            return
        if all(x.tpm is None for x in lease.limits):
            return  # nothing to correct (RPM only): skip the shielded task
        used = admission.ctx.tokens - admission.tokens_before
        await asyncio.shield(asyncio.ensure_future(self.limiter.settle(lease, used)))
