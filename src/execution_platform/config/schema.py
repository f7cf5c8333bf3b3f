"""The shape of the YAML configuration file, as pydantic models.

Every model forbids unknown keys, so a typo (``temprature:``) is an error with a line number instead of
a setting that silently does nothing. Checks that span several sections (a persona naming a deployment
that does not exist, a budget reference with no budget) live in :meth:`Config.problems`, which returns
locations in the same form as pydantic so both kinds of error map back to lines the same way.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..model.address import parse_address

CapabilityName = Literal[
    "tools", "parallel_tools", "vision", "json_object", "json_schema", "streaming", "system_prompt", "reasoning"
]
Effort = Literal["minimal", "low", "medium", "high"]
# Which OpenAI API the OpenAI adapter calls upstream (some models are only served by ``responses``).
OpenAIApi = Literal["chat", "responses"]
Period = Literal["day", "week", "month", "total"]
_MCP_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")  # becomes the ``<name>__`` prefix of the server's tool names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TimeoutsConfig(_Strict):
    """Seconds; any key left out inherits from the enclosing level (routing → provider → target)."""

    connect: float | None = Field(None, gt=0)
    first_token: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)
    stream_idle: float | None = Field(None, gt=0)


class RetryConfig(_Strict):
    """Retries on one target before falling back to the next (only retryable errors are retried)."""

    max_attempts: int = Field(2, ge=1, le=10)
    backoff_base: float = Field(0.25, ge=0)
    backoff_max: float = Field(4.0, ge=0)
    max_retry_after: float = Field(20.0, ge=0)


class BreakerConfig(_Strict):
    failure_threshold: int = Field(5, ge=1)
    cooldown: float = Field(30.0, ge=0)
    half_open_probes: int = Field(1, ge=1)


class RoutingConfig(_Strict):
    """Defaults for every target; personas and deployments may override parts of them."""

    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)


class CapabilitiesOverride(_Strict):
    """Partial :class:`~execution_platform.model.Capabilities`: only the keys given replace the defaults."""

    tools: bool | None = None
    parallel_tools: bool | None = None
    vision: bool | None = None
    json_object: bool | None = None
    json_schema: bool | None = None
    streaming: bool | None = None
    system_prompt: bool | None = None
    reasoning: bool | None = None
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)


class PricingOverride(_Strict):
    """USD per million tokens, for models the maintained price list does not know (or gets wrong)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    cache_write_1h_per_mtok: float | None = Field(None, ge=0)


class LimitsConfig(_Strict):
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)  # requests in flight (personas, teams), per process


class ProviderConfig(_Strict):
    api_key: str | None = None
    base_url: str | None = None
    timeouts: TimeoutsConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # OpenAI adapter only: the upstream API for every model (``api``) or for named models (``model_api``).
    api: OpenAIApi | None = None
    model_api: dict[str, OpenAIApi] = Field(default_factory=dict)


class Deployment(_Strict):
    """A named target. Several deployments sharing a ``model_name`` form one load-balanced group."""

    name: str = Field(min_length=1)
    model_name: str | None = None
    provider: str
    model: str = Field(min_length=1)
    weight: int = Field(1, ge=1)
    base_url: str | None = None
    api_key: str | None = None
    timeouts: TimeoutsConfig | None = None
    breaker: BreakerConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    limits: LimitsConfig | str | None = None  # RPM/TPM of this deployment; inline or a name in ``limits``
    api: OpenAIApi | None = None  # OpenAI adapter only: call the upstream through chat or responses


class Params(_Strict):
    """Request parameters a persona or a target sets."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    seed: int | None = None
    reasoning_effort: Effort | None = None
    reasoning_budget_tokens: int | None = Field(None, ge=0)
    provider_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("provider_options")
    @classmethod
    def _no_owned_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The same rule as native requests: options add upstream fields, they never carry the
        # model, prompt, tools, cap or stream flags (those have their own settings).
        from ..codecs.passthrough import check_provider_options
        from ..errors import InvalidRequestError

        try:
            check_provider_options(value)
        except InvalidRequestError as exc:
            raise ValueError(str(exc)) from None
        return value


class TargetConfig(Params):
    """One entry of a persona's chain: ``provider/model``, a deployment name or a ``model_name``.

    Written either as a plain string or as a mapping with ``target`` plus per-target overrides.
    """

    target: str = Field(min_length=1)
    timeouts: TimeoutsConfig | None = None


class BudgetConfig(_Strict):
    usd: float = Field(ge=0)
    period: Period = "day"
    hard: bool = True  # hard: refuse (402) before calling; soft: only alert at the thresholds
    thresholds: list[float] = Field(default_factory=lambda: [0.8])  # fractions of usd that alert
    webhook_url: str | None = None  # POSTed a JSON event when a threshold is passed


class Persona(_Strict):
    description: str | None = None
    targets: list[TargetConfig] = Field(min_length=1)
    requires: list[CapabilityName] = Field(default_factory=list)
    system_prompt: str | None = None
    system_prompt_file: str | None = None
    params: Params = Field(default_factory=Params)
    tools: list[str] | None = None  # allow-list; None means any tool
    budget: BudgetConfig | str | None = None  # inline, or the name of an entry in ``budgets``
    limits: LimitsConfig | str | None = None  # inline, or the name of an entry in ``limits``
    retry: RetryConfig | None = None
    timeouts: TimeoutsConfig | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _short_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [{"target": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _one_prompt_source(self) -> Persona:
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise ValueError("give system_prompt or system_prompt_file, not both")
        return self


class Team(_Strict):
    """Spend and rate limits of a team (requests tagged ``X-EP-Team`` or made with the team's keys)."""

    budget: BudgetConfig | str | None = None  # inline, or the name of an entry in ``budgets``
    limits: LimitsConfig | str | None = None  # inline, or the name of an entry in ``limits``


class MCPServer(_Strict):
    """An MCP server whose tools the gateway mounts at start-up (as ``<name>__<tool>``).

    Either a local process spoken to over stdio (``command`` with ``args``, ``env``, ``cwd``) or a
    streamable HTTP endpoint (``url`` with ``headers``). A stdio server does not inherit the gateway's
    environment (its provider keys stay private): only a safe default set plus ``env``.
    """

    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0)  # seconds, for start-up and for each tool call

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give command (stdio) or url (streamable HTTP), not both")
        if self.command is None and (self.args or self.env is not None or self.cwd is not None):
            raise ValueError("args, env and cwd apply to stdio servers (command), not to url")
        if self.url is None and self.headers:
            raise ValueError("headers apply to streamable HTTP servers (url), not to command")
        return self


class ServerConfig(_Strict):
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    request_timeout: float | None = Field(None, gt=0)
    # Seconds a budget hold in Redis outlives a gateway that died; live holds are renewed meanwhile.
    budget_hold_ttl: float = Field(30.0, ge=0.5)
    # Connection hygiene (``ep serve``): seconds an idle keep-alive connection stays open, a client
    # may take to send its request headers, and may stay silent in the middle of a body (408);
    # connections over ``max_connections`` are answered 503.
    keep_alive_timeout: float = Field(5.0, gt=0, le=3600)
    header_timeout: float = Field(10.0, gt=0, le=3600)
    body_timeout: float = Field(30.0, gt=0, le=3600)
    max_connections: int = Field(10_000, ge=1, le=1_000_000)
    # A request parameter the serving upstream cannot take is a 400 naming it, instead of being
    # dropped and listed in the x-ep-dropped-params response header.
    strict_params: bool = False
    # Same wire format in and out (an OpenAI client to an OpenAI-compatible upstream, Anthropic to
    # Anthropic): the upstream's answer and stream frames are forwarded as bytes, not re-encoded.
    fast_path: bool = True


class LedgerConfig(_Strict):
    # Raw ledger rows older than this many days are deleted; the daily roll-up keeps totals exact.
    retention_days: int | None = Field(None, ge=1)


class Config(_Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    deployments: list[Deployment] = Field(default_factory=list)
    personas: dict[str, Persona] = Field(default_factory=dict)
    budgets: dict[str, BudgetConfig] = Field(default_factory=dict)
    limits: dict[str, LimitsConfig] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    capabilities: dict[str, CapabilitiesOverride] = Field(default_factory=dict)
    pricing: dict[str, PricingOverride] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    mcp_servers: dict[str, MCPServer] = Field(default_factory=dict)

    @field_validator(
        "providers", "personas", "budgets", "limits", "teams", "capabilities", "pricing", "mcp_servers", mode="before"
    )
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("deployments", mode="before")
    @classmethod
    def _null_is_empty_list(cls, value: Any) -> Any:
        return [] if value is None else value

    # -- lookups ----------------------------------------------------------------------------------
    def deployment(self, name: str) -> Deployment | None:
        return next((d for d in self.deployments if d.name == name), None)

    def group(self, model_name: str) -> list[Deployment]:
        return [d for d in self.deployments if d.model_name == model_name]

    def persona_budget(self, persona: str) -> BudgetConfig | None:
        """The persona's budget with a by-name reference resolved (for the money layer)."""
        ref = self.personas[persona].budget
        return self.budgets.get(ref) if isinstance(ref, str) else ref

    def persona_limits(self, persona: str) -> LimitsConfig | None:
        ref = self.personas[persona].limits
        return self.limits.get(ref) if isinstance(ref, str) else ref

    def team_budget(self, team: str) -> BudgetConfig | None:
        ref = self.teams[team].budget
        return self.budgets.get(ref) if isinstance(ref, str) else ref

    def team_limits(self, team: str) -> LimitsConfig | None:
        ref = self.teams[team].limits
        return self.limits.get(ref) if isinstance(ref, str) else ref

    def deployment_limits(self, name: str) -> LimitsConfig | None:
        dep = self.deployment(name)
        ref = dep.limits if dep is not None else None
        return self.limits.get(ref) if isinstance(ref, str) else ref

    def is_target(self, address: str, known_providers: set[str]) -> bool:
        if self.deployment(address) is not None or self.group(address):
            return True
        parsed = parse_address(address)  # ``local`` alone serves one configured model
        return parsed.kind in ("bare", "provider_model") and parsed.provider in known_providers

    # -- cross-section checks -----------------------------------------------------------------------
    def problems(self, known_providers: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
        """Errors pydantic cannot see field by field, each as (location, reason)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        known = ", ".join(sorted(known_providers))
        for name in self.providers:
            if name not in known_providers:
                found.append((("providers", name), f"unknown provider '{name}' (known: {known})"))
        seen: set[str] = set()
        for i, dep in enumerate(self.deployments):
            if dep.name in seen:
                found.append((("deployments", i, "name"), f"duplicate deployment name '{dep.name}'"))
            seen.add(dep.name)
            if dep.provider not in known_providers:
                found.append((("deployments", i, "provider"), f"unknown provider '{dep.provider}' (known: {known})"))
        for pname, persona in self.personas.items():
            for i, target in enumerate(persona.targets):
                if not self.is_target(target.target, known_providers):
                    found.append(
                        (
                            ("personas", pname, "targets", i),
                            f"'{target.target}' is neither provider/model with a known provider ({known}) "
                            "nor a deployment name or model_name",
                        )
                    )
            if isinstance(persona.budget, str) and persona.budget not in self.budgets:
                found.append((("personas", pname, "budget"), f"no budget named '{persona.budget}' in 'budgets'"))
            if isinstance(persona.limits, str) and persona.limits not in self.limits:
                found.append((("personas", pname, "limits"), f"no limits named '{persona.limits}' in 'limits'"))
        for tname, team in self.teams.items():
            if isinstance(team.budget, str) and team.budget not in self.budgets:
                found.append((("teams", tname, "budget"), f"no budget named '{team.budget}' in 'budgets'"))
            if isinstance(team.limits, str) and team.limits not in self.limits:
                found.append((("teams", tname, "limits"), f"no limits named '{team.limits}' in 'limits'"))
        for i, dep in enumerate(self.deployments):
            if isinstance(dep.limits, str) and dep.limits not in self.limits:
                found.append((("deployments", i, "limits"), f"no limits named '{dep.limits}' in 'limits'"))
        for key in self.capabilities:
            if not self.is_target(key, known_providers):
                found.append((("capabilities", key), f"'{key}' is not provider/model or a deployment name"))
        for key in self.mcp_servers:
            if not _MCP_NAME.fullmatch(key):
                found.append((("mcp_servers", key), "an MCP server name uses letters, digits, '_' and '-' only"))
        for key in self.pricing:
            parsed = parse_address(key, bare=())
            if not (parsed.kind == "provider_model" and parsed.provider in known_providers):
                found.append((("pricing", key), f"'{key}' is not provider/model with a known provider"))
        return found
