"""Resolve a model address to a composed provider stack and the request that stack should receive.

Addresses: ``persona:NAME`` (the persona's fallback chain), a deployment name, a ``model_name``
shared by several deployments (load-balanced), or ``provider/model``. Every upstream call goes
through ``Retrying(Breaker(Endpoint(adapter)))``; groups put a balancer between retry and breakers;
personas put a fallback chain on top::

    Fallback ─┬─ Retrying ─ Breaker ─ Endpoint ─ OpenAIProvider
              └─ Retrying ─ Balanced ─┬─ Breaker ─ Endpoint ─ GeminiProvider (key A)
                                      └─ Breaker ─ Endpoint ─ GeminiProvider (key B)

:meth:`Router.reload` builds a complete new snapshot and swaps one reference, so calls already in
flight finish on the stack they started with. Breakers and adapter instances (and their pooled
connections) are kept across reloads for targets that did not change.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config.schema import (
    BreakerConfig,
    Config,
    Deployment,
    Persona,
    RetryConfig,
    TargetConfig,
    TimeoutsConfig,
)
from ..errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from ..model import Capabilities, ChatRequest, Message, Reasoning
from ..model.address import parse_address, persona_address
from ..providers.base import Provider
from ..providers.http import Timeouts
from .balance import BalancedProvider, Member
from .breaker import CircuitBreaker, CircuitBreakerProvider
from .capabilities import apply_override, intersect
from .endpoint import Endpoint
from .fallback import FallbackProvider, Target
from .retry import RetryingProvider, RetryPolicy

__all__ = ["ProviderFactory", "Router"]

ProviderFactory = Callable[..., Provider]
LeafWrapper = Callable[[Provider, Config, "str | None"], Provider]
"""``(adapter, config, deployment name) -> provider`` placed between an Endpoint and its adapter
(the SDK puts per-attempt metering there, see ``money.meter``)."""
_PARAM_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "seed")
# Direct ``provider/model`` addresses come from callers; bound what they can make us remember.
_MAX_DIRECT = 1024
_MAX_BREAKERS = 4096


@dataclass
class _Snapshot:
    """Everything built from one configuration; never mutated after a reload replaced it."""

    config: Config
    personas: dict[str, FallbackProvider] = field(default_factory=dict)
    direct: dict[str, tuple[Provider, Capabilities]] = field(default_factory=dict)


class Router:
    def __init__(
        self,
        config: Config | None = None,
        settings: Any = None,
        *,
        provider_factory: ProviderFactory | None = None,
        providers: dict[str, Provider] | None = None,
        wrap: LeafWrapper | None = None,
        http: Any = None,
    ) -> None:
        """``providers`` are ready-made adapters by provider name, used as they are (tests, the SDK);
        ``wrap`` wraps every adapter once per target it serves (each attempt passes through it);
        ``http`` is the connection pool the adapters it creates share (its owner closes it)."""
        if settings is None:
            from ..config.settings import Settings

            settings = Settings()
        self.settings = settings
        self._factory = provider_factory or self._default_factory
        self._adapters: dict[tuple[Any, ...], Provider] = {}
        self._given = providers or {}
        self._wrap = wrap
        self._http = http
        self._breakers: dict[str, CircuitBreaker] = {}
        self._snapshot = _Snapshot(config or Config())

    # -- configuration ------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._snapshot.config

    def reload(self, config: Config) -> None:
        """Swap in a new configuration atomically; in-flight calls keep the stack they resolved."""
        self._snapshot = _Snapshot(config)

    def breaker(self, key: str) -> CircuitBreaker | None:
        """The breaker of a deployment name or ``provider/model`` target (for health pages and tests)."""
        return self._breakers.get(key)

    # -- resolving ------------------------------------------------------------------------------
    def resolve(self, request: ChatRequest, *, persona: str | None = None) -> tuple[Provider, ChatRequest]:
        """The provider stack for ``request.model`` (or for ``persona``) and the rewritten request."""
        snap = self._snapshot
        address = request.model
        if persona is None:
            persona = parse_address(address).persona
        if persona is not None:
            policy = snap.config.personas.get(persona)
            if policy is None:
                raise NotFoundError(f"unknown persona '{persona}'", code="persona_not_found", param="model")
            chain = snap.personas.get(persona)
            if chain is None:
                chain = snap.personas[persona] = self._persona_chain(snap.config, persona, policy)
            return chain, _apply_persona(request, persona, policy)
        return self._direct(snap, address)[0], request

    def resolve_target(self, address: str) -> Provider:
        """The provider stack of a deployment, group or ``provider/model`` (for calls that are not chat:
        embeddings). A persona is a chat policy (system prompt, tools, parameters), so it is refused."""
        if parse_address(address).is_persona:
            raise InvalidRequestError(
                f"'{address}' is a persona, which has no embeddings; address a deployment or provider/model",
                param="model",
            )
        return self._direct(self._snapshot, address)[0]

    def _direct(self, snap: _Snapshot, address: str) -> tuple[Provider, Capabilities]:
        entry = snap.direct.get(address)
        if entry is None:
            entry = self._target(snap.config, address, [], snap.config.routing.retry)
            if len(snap.direct) >= _MAX_DIRECT:
                snap.direct.clear()
            snap.direct[address] = entry
        return entry

    def capabilities(self, address: str) -> Capabilities:
        """What a target address (deployment, model_name or provider/model) can do, overrides applied."""
        return self._direct(self._snapshot, address)[1]

    def capabilities_table(self) -> dict[str, Capabilities]:
        """Capabilities of every deployment, model_name and persona target in the configuration."""
        config = self.config
        addresses: list[str] = []
        for dep in config.deployments:
            addresses += [dep.name, f"{dep.provider}/{dep.model}"] + ([dep.model_name] if dep.model_name else [])
        for persona in config.personas.values():
            addresses += [t.target for t in persona.targets]
        return {address: self.capabilities(address) for address in dict.fromkeys(addresses)}

    # -- building -------------------------------------------------------------------------------
    def _persona_chain(self, config: Config, name: str, persona: Persona) -> FallbackProvider:
        retry = persona.retry or config.routing.retry
        targets: list[Target] = []
        for spec in persona.targets:
            provider, caps = self._target(config, spec.target, [persona.timeouts, spec.timeouts], retry)
            provider_name, model = _describe(config, spec.target)
            targets.append(
                Target(provider, spec.target, caps, provider_name=provider_name, model=model, params=_target_params(spec))
            )
        return FallbackProvider(targets, requires=persona.requires, name=persona_address(name))

    def _target(
        self, config: Config, address: str, timeouts: list[TimeoutsConfig | None], retry: RetryConfig
    ) -> tuple[Provider, Capabilities]:
        policy = RetryPolicy(**retry.model_dump())
        dep = config.deployment(address)
        if dep is not None:
            slot, caps = self._slot(config, dep.provider, dep.model, dep, timeouts)
            return RetryingProvider(slot, policy), caps
        group = config.group(address)
        if group:
            members: list[Member] = []
            offers: list[Capabilities] = []
            for member in group:
                slot, caps = self._slot(config, member.provider, member.model, member, timeouts)
                members.append(Member(slot, member.weight, slot.breaker, member.name))
                offers.append(caps)
            group_caps = apply_override(intersect(offers), config.capabilities.get(address))
            return RetryingProvider(BalancedProvider(members, name=address), policy), group_caps
        from ..providers.registry import split_model

        provider_name, model = split_model(address)
        slot, caps = self._slot(config, provider_name, model, None, timeouts)
        return RetryingProvider(slot, policy), caps

    def _slot(
        self,
        config: Config,
        provider_name: str,
        model: str,
        dep: Deployment | None,
        extra_timeouts: list[TimeoutsConfig | None],
    ) -> tuple[CircuitBreakerProvider, Capabilities]:
        pconf = config.providers.get(provider_name)
        layers = [config.routing.timeouts, pconf.timeouts if pconf else None, dep.timeouts if dep else None]
        timeouts = _timeouts([*layers, *extra_timeouts])
        base_url = (dep.base_url if dep else None) or (pconf.base_url if pconf else None)
        api_key = (dep.api_key if dep else None) or (pconf.api_key if pconf else None)
        headers = {**(pconf.headers if pconf else {}), **(dep.headers if dep else {})}
        api = (dep.api if dep else None) or (pconf.model_api.get(model) or pconf.api if pconf else None)
        adapter = self._adapter(
            provider_name, base_url=base_url, api_key=api_key, headers=headers, timeouts=timeouts, api=api
        )
        deployment = dep.name if dep else None
        leaf = self._wrap(adapter, config, deployment) if self._wrap is not None else adapter
        endpoint = Endpoint(leaf, model=model, provider=provider_name, deployment=deployment, timeouts=timeouts)
        key = deployment or f"{provider_name}/{model}@{base_url or ''}"
        breaker = self._breaker(key, (dep.breaker if dep else None) or config.routing.breaker)
        if deployment is None and len(self._breakers) < _MAX_BREAKERS:
            self._breakers.setdefault(f"{provider_name}/{model}", breaker)
        caps = adapter.capabilities(model)
        caps = apply_override(caps, config.capabilities.get(f"{provider_name}/{model}"))
        if deployment is not None:
            caps = apply_override(caps, config.capabilities.get(deployment))
        return CircuitBreakerProvider(endpoint, breaker, model=model, deployment=deployment), caps

    def _breaker(self, key: str, conf: BreakerConfig) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(**conf.model_dump())
            if len(self._breakers) < _MAX_BREAKERS:
                self._breakers[key] = breaker
        else:  # keep the state, adopt changed settings
            breaker.failure_threshold = conf.failure_threshold
            breaker.cooldown = conf.cooldown
            breaker.half_open_probes = conf.half_open_probes
        return breaker

    def _adapter(self, provider_name: str, **options: Any) -> Provider:
        if provider_name in self._given:
            return self._given[provider_name]
        key = (provider_name, *(repr(options[k]) for k in sorted(options)))
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters[key] = self._factory(provider_name, **options)
        return adapter

    def _default_factory(self, provider_name: str, **options: Any) -> Provider:
        """Create an adapter from settings, passing only the options its constructor accepts."""
        from ..providers.registry import create_provider, provider_class

        accepted = inspect.signature(provider_class(provider_name).__init__).parameters
        renamed = {"headers": "extra_headers"}
        kwargs = {renamed.get(k, k): v for k, v in options.items() if v}
        kwargs = {k: v for k, v in kwargs.items() if k in accepted and k != "http"}
        return create_provider(provider_name, self.settings, http=self._http, **kwargs)

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            if adapter not in self._given.values():
                await adapter.aclose()


def _describe(config: Config, address: str) -> tuple[str, str]:
    dep = config.deployment(address)
    if dep is not None:
        return dep.provider, dep.model
    group = config.group(address)
    if group:
        return group[0].provider, address
    parsed = parse_address(address, bare=())
    return (parsed.provider, parsed.model) if parsed.provider is not None and parsed.model else (address, "")


def _timeouts(layers: list[TimeoutsConfig | None]) -> Timeouts:
    merged = {"connect": None, "first_token": None, "total": None, "stream_idle": None}
    for layer in layers:
        if layer is not None:
            merged.update(layer.model_dump(exclude_none=True))
    default = Timeouts()
    return Timeouts(
        connect=merged["connect"] or default.connect,
        read=merged["first_token"] or default.read,
        total=merged["total"] or default.total,
        stream_idle=merged["stream_idle"] or default.stream_idle,
    )


def _reasoning(effort: str | None, budget: int | None) -> Reasoning | None:
    if effort is None and budget is None:
        return None
    return Reasoning(effort=effort, budget_tokens=budget)  # type: ignore[arg-type,unused-ignore]


def _target_params(spec: TargetConfig) -> dict[str, Any]:
    """Per-target overrides as ChatRequest fields; they win over persona defaults and the caller."""
    params: dict[str, Any] = {f: getattr(spec, f) for f in _PARAM_FIELDS if getattr(spec, f) is not None}
    reasoning = _reasoning(spec.reasoning_effort, spec.reasoning_budget_tokens)
    if reasoning is not None:
        params["reasoning"] = reasoning
    if spec.provider_options:
        params["provider_options"] = dict(spec.provider_options)
    return params


def _tool_allowed(name: str, allowed: list[str]) -> bool:
    """Exact names or fnmatch patterns (``fs__*``), as the tool registry reads the same list."""
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in allowed)


def _apply_persona(request: ChatRequest, name: str, persona: Persona) -> ChatRequest:
    """Prepend the persona's system prompt, fill in its parameters and tag the call with the persona.

    The caller's explicit parameters win over the persona's defaults, except the output cap, which
    is a ceiling (a caller may ask for fewer tokens, never more), and the persona's provider options,
    which are policy. The persona's tool allow-list is enforced (a tool outside it is refused rather
    than silently dropped).
    """
    if persona.tools is not None:
        refused = [t.name for t in request.tools if not _tool_allowed(t.name, persona.tools)]
        if refused:
            raise PermissionDeniedError(
                f"persona '{name}' may not use tool(s) {', '.join(refused)}; allowed: {', '.join(persona.tools) or 'none'}",
                code="tool_not_allowed",
                param="tools",
            )
    update: dict[str, Any] = {"metadata": request.metadata.model_copy(update={"persona": name})}
    if persona.system_prompt:
        update["messages"] = [Message(role="system", content=persona.system_prompt), *request.messages]
    params = persona.params
    for f in _PARAM_FIELDS:
        if getattr(request, f) is None and getattr(params, f) is not None:
            update[f] = getattr(params, f)
    if params.max_tokens is not None and request.max_tokens is not None:
        update["max_tokens"] = min(request.max_tokens, params.max_tokens)
    if request.reasoning is None:
        reasoning = _reasoning(params.reasoning_effort, params.reasoning_budget_tokens)
        if reasoning is not None:
            update["reasoning"] = reasoning
    if params.provider_options:
        update["provider_options"] = {**request.provider_options, **params.provider_options}
    return request.model_copy(update=update)
