"""Build provider instances by name from settings, importing each adapter module only when used."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..model.address import BARE_PROVIDERS, parse_address

if TYPE_CHECKING:
    from ..config.settings import Settings
    from .base import Provider

# provider name -> (module, class, settings attribute prefix)
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "openai": ("execution_platform.providers.openai", "OpenAIProvider", "openai"),
    "anthropic": ("execution_platform.providers.anthropic", "AnthropicProvider", "anthropic"),
    "gemini": ("execution_platform.providers.gemini", "GeminiProvider", "gemini"),
    "claude_agent": ("execution_platform.providers.claude_agent", "ClaudeAgentProvider", None),
    "local": ("execution_platform.providers.local", "LocalProvider", None),
}

# Providers that serve one configured model, so the bare provider name is a complete address.
BARE = BARE_PROVIDERS


# Providers that need an installed package rather than a key to be usable.
_NEEDS_PACKAGE = {"claude_agent": "claude_agent_sdk"}


def key_setting(name: str, settings: Settings) -> str | None:
    """The settings attribute holding this provider's API key, or None when it needs no key."""
    prefix = PROVIDERS[name][2]
    attr = f"{prefix}_api_key" if prefix else None
    return attr if attr is not None and hasattr(settings, attr) else None


def usable_without_key(name: str) -> bool:
    """For a provider that needs no key: whether what it does need (a package) is installed."""
    package = _NEEDS_PACKAGE.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def provider_class(name: str) -> type[Provider]:
    try:
        module_name, class_name, _ = PROVIDERS[name]
    except KeyError:
        raise NotFoundError(
            f"unknown provider '{name}'; known: {', '.join(sorted(PROVIDERS))}", code="provider_not_found"
        ) from None
    return getattr(importlib.import_module(module_name), class_name)


def create_provider(name: str, settings: Settings, *, http: Any = None, **overrides: Any) -> Provider:
    """A provider configured from ``EP_*`` settings; ``overrides`` (api_key, base_url, …) win.

    ``http`` is the connection pool (``providers.http.HttpClient``) HTTP adapters should share; the
    owner of that pool closes it.
    """
    cls = provider_class(name)
    _, _, prefix = PROVIDERS[name]
    kwargs: dict[str, Any] = {}
    if prefix is not None:
        kwargs["api_key"] = settings.secret(f"{prefix}_api_key")
        kwargs["base_url"] = getattr(settings, f"{prefix}_base_url")
        kwargs["http"] = http
    else:
        kwargs["settings"] = settings
        if name in BARE:
            kwargs["http"] = http
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**kwargs)


def split_model(address: str) -> tuple[str, str]:
    """``"openai/gpt-4o"`` → ``("openai", "gpt-4o")``; the model part may itself contain slashes.

    ``"local"`` alone is ``("local", "default")``: that provider serves one configured model."""
    parsed = parse_address(address, bare=BARE)
    if parsed.provider is None or parsed.model is None:
        raise NotFoundError(
            f"model '{address}' is not of the form provider/model (e.g. openai/gpt-4o-mini)",
            code="model_not_found",
            param="model",
        )
    return parsed.provider, parsed.model
