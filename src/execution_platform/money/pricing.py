"""Prices per model, from the ``genai-prices`` data bundled with the installed package.

Only the bundled snapshot is used: ``genai_prices.UpdatePrices`` (the background HTTP fetcher) is never
started, so prices never change under a running process and nothing is fetched at run time. Config
overrides win over the bundle and are looked up by deployment name, then ``provider/model``, then model:
``{"gpt-a": {"input_per_mtok": 0.1, "output_per_mtok": 0.4, "cached_input_per_mtok": 0.05}}``.
A provider-reported cost (``ChatResponse.cost_usd`` already set, e.g. the Claude Agent SDK's
``total_cost_usd``) is preferred by :mod:`metering` over anything computed here.

Usage conventions (canonical ``Usage``): ``input_tokens`` includes cached reads and cache writes;
``output_tokens`` includes reasoning tokens (as OpenAI and Anthropic report them), which are priced at
the model's reasoning price when it has one. A model with no known price costs 0 and is logged once:
give it an override if budgets must apply to it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


class _Deferred(types.ModuleType):
    """A module not imported yet: the first name read from it imports it (and replaces this stand-in)."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _defer_fetcher_http_client() -> None:
    """``genai_prices`` imports its price fetcher's HTTP client (``httpx2``, ~1 MB resident) when it
    is imported; the fetcher is never started here, so a stand-in takes its place until used."""
    if "httpx2" not in sys.modules and importlib.util.find_spec("httpx2") is not None:
        sys.modules["httpx2"] = _Deferred("httpx2")


_defer_fetcher_http_client()

import genai_prices  # noqa: E402
from genai_prices import data_snapshot  # noqa: E402
from genai_prices.types import ModelPrice  # noqa: E402

from ..model import Usage  # noqa: E402

log = logging.getLogger(__name__)

# Our provider names -> genai-prices provider ids.
_PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "claude_agent": "anthropic"}
# Short names used by the Claude Agent SDK.
# genai-prices price keys that map one-to-one onto :class:`Price` fields.
_LINEAR_KEYS = {"input_mtok": "input_per_mtok", "output_mtok": "output_per_mtok",
                "cache_read_mtok": "cached_input_per_mtok", "cache_write_mtok": "cache_write_per_mtok",
                "cache_write_1h_mtok": "cache_write_1h_per_mtok", "output_reasoning_mtok": "reasoning_per_mtok"}
# Price keys of units our usage never counts (media, documents, searches): 0 USD.
_UNUSED_UNITS = ("audio", "image", "video", "document", "citation", "searches")
_CLAUDE_ALIASES = {"sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-1", "haiku": "claude-haiku-4-5"}


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Unset cached/cache-write/reasoning prices fall back to input/output; an
    unset 1-hour cache-write price falls back to the cache-write price."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None
    reasoning_per_mtok: float | None = None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Price:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown price field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: float(v) for k, v in data.items() if v is not None})

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        hour = min(usage.cache_write_1h_tokens, written)
        plain_in = usage.input_tokens - cached - written
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        # The fallbacks written out as conditionals (no helper call each): every answer is priced here.
        input_price, output_price = self.input_per_mtok, self.output_per_mtok
        write_price = self.cache_write_per_mtok
        if write_price is None:
            write_price = input_price
        cached_price, hour_price, reasoning_price = (
            self.cached_input_per_mtok, self.cache_write_1h_per_mtok, self.reasoning_per_mtok)
        total = (
            plain_in * input_price
            + cached * (input_price if cached_price is None else cached_price)
            + (written - hour) * write_price
            + hour * (write_price if hour_price is None else hour_price)
            + (usage.output_tokens - reasoning) * output_price
            + reasoning * (output_price if reasoning_price is None else reasoning_price)
        )
        return total / 1_000_000


class UnknownPriceError(LookupError):
    """No override and no bundled price for this provider/model."""


# Models that run on this machine: no per-token price (a config price override still applies).
FREE_PROVIDERS = frozenset({"local"})


class PriceBook:
    """Cost of a call from its usage, and the worst case a call could cost (for budget reservations)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any] | Price] | None = None) -> None:
        self.overrides: dict[str, Price] = {
            name: p if isinstance(p, Price) else Price.from_config(p) for name, p in (overrides or {}).items()
        }
        self._warned: set[tuple[str, str]] = set()
        self._linear: dict[tuple[str, str], Price | None] = {}

    # -- lookup ----------------------------------------------------------------------------------
    def _override(self, provider: str, model: str, deployment: str | None) -> Price | None:
        if not self.overrides:  # most configurations override nothing: no name to build
            return None
        for name in (deployment, f"{provider}/{model}", model):
            if name and name in self.overrides:
                return self.overrides[name]
        return None

    def _bundled(self, provider: str, model: str) -> tuple[Any, Any]:
        provider_id = _PROVIDER_IDS.get(provider, provider)
        ref = _CLAUDE_ALIASES.get(model, model) if provider == "claude_agent" else model
        snapshot = data_snapshot.get_snapshot()
        try:
            return snapshot.find_provider_model(ref, None, provider_id, None)
        except LookupError:
            try:  # unknown provider name (a custom OpenAI-compatible server): match by model alone
                return snapshot.find_provider_model(ref, None, None, None)
            except LookupError as exc:
                raise UnknownPriceError(f"no price for {provider}/{model}") from exc

    def known(self, provider: str, model: str, deployment: str | None = None) -> bool:
        if self._override(provider, model, deployment):
            return True
        try:
            self._bundled(provider, model)
        except UnknownPriceError:
            return False
        return True

    def _fast(self, provider: str, model: str) -> Price | None:
        """The bundled price as a plain per-token :class:`Price` when it is one (no tiers, no dated
        conditions, no per-request or per-character prices), cached per model: ``calc_price`` costs
        ~0.2 ms a call, too much for every request's reservation and settlement. None otherwise."""
        key = (provider, model)
        if key in self._linear:
            return self._linear[key]
        price: Price | None = None
        try:
            _, info = self._bundled(provider, model)
        except UnknownPriceError:
            info = None
        prices = getattr(info, "prices", None)
        if isinstance(prices, ModelPrice):  # (price variants apply only with a request context: never here)
            values = {
                k: v for k, v in prices.__dict__.items()
                if v is not None and not k.startswith("_") and not any(u in k for u in _UNUSED_UNITS)
            }
            if (
                {"input_mtok", "output_mtok"} <= set(values) <= set(_LINEAR_KEYS)
                and all(isinstance(v, Decimal | int | float) for v in values.values())
            ):
                price = Price(**{_LINEAR_KEYS[k]: float(v) for k, v in values.items()})
        if len(self._linear) < 4096:
            self._linear[key] = price
        return price

    def _warn_unknown(self, provider: str, model: str) -> None:
        if (provider, model) not in self._warned:
            self._warned.add((provider, model))
            log.warning("no price known for %s/%s: its cost is recorded as 0", provider, model)

    # -- costs -----------------------------------------------------------------------------------
    def cost(self, provider: str, model: str, usage: Usage, *, deployment: str | None = None) -> float:
        """USD cost of ``usage`` on this model (0 with a warning when the price is unknown)."""
        if provider in FREE_PROVIDERS and not self._override(provider, model, deployment):
            return 0.0
        override = self._override(provider, model, deployment) or self._fast(provider, model)
        if override:
            return override.cost(usage)
        try:
            found_provider, info = self._bundled(provider, model)
        except UnknownPriceError:
            self._warn_unknown(provider, model)
            return 0.0
        raw = genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=min(usage.cached_input_tokens, usage.input_tokens),
            cache_write_tokens=min(usage.cache_write_tokens, usage.input_tokens),
            cache_write_1h_tokens=min(usage.cache_write_1h_tokens, usage.cache_write_tokens, usage.input_tokens),
            output_reasoning_tokens=min(usage.reasoning_tokens, usage.output_tokens),
        )
        calc = info.calc_price(raw, found_provider, genai_request_timestamp=datetime.now(UTC))
        return float(calc.total_price)

    def worst_case_cost(
        self,
        provider: str,
        model: str,
        prompt_tokens_upper_bound: int,
        max_output_tokens: int,
        *,
        deployment: str | None = None,
    ) -> float:
        """The most a call with these bounds can cost: no cache discount, every input token possibly a
        (dearer) cache write, all output at the dearest output rate; tiered prices pick their tier from
        the input size (1-hour writes are dearer still). Rounded up to the next nano-dollar so a reservation never undershoots."""
        n, m = max(prompt_tokens_upper_bound, 0), max(max_output_tokens, 0)
        candidates = [
            Usage(input_tokens=n, output_tokens=m),
            Usage(input_tokens=n, cache_write_tokens=n, output_tokens=m),
            Usage(input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n, output_tokens=m),
            Usage(input_tokens=n, output_tokens=m, reasoning_tokens=m),
        ]
        worst = max(self.cost(provider, model, u, deployment=deployment) for u in candidates)
        return math.ceil(worst * 1e9) / 1e9


_default = PriceBook()


def cost(provider: str, model: str, usage: Usage, *, deployment: str | None = None) -> float:
    """Cost with the bundled prices (no overrides); see :class:`PriceBook` for overrides."""
    return _default.cost(provider, model, usage, deployment=deployment)


def worst_case_cost(
    provider: str, model: str, prompt_tokens_upper_bound: int, max_output_tokens: int
) -> float:
    return _default.worst_case_cost(provider, model, prompt_tokens_upper_bound, max_output_tokens)




def catalogue_models(provider: str) -> list[tuple[str, str]]:
    """``(model id, display name)`` of every model the bundled catalogue prices for one of our providers
    (none for a provider the catalogue does not know). Used to list models without a config file."""
    try:
        found = data_snapshot.get_snapshot().find_provider(None, _PROVIDER_IDS.get(provider, provider), None)
    except LookupError:
        return []
    return [(m.id, m.name or m.id) for m in found.models if not m.deprecated]
