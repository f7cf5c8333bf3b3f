"""What the gateway can name: deployments and personas from the config, models from its providers."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...config.availability import cloud_configured, configured_providers, local_available
from ...model.address import parse_address, persona_address
from ...money.pricing import catalogue_models
from ...providers.registry import provider_class
from ..state import Gateway


def default_model(gw: Gateway) -> str | None:
    """The model for a request that names none: ``local`` when no cloud provider has a key."""
    if cloud_configured(gw.settings, gw.config):
        return None
    return "local" if local_available(gw.settings) else None


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    return list(value)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def model_ids(gw: Gateway) -> Iterator[tuple[str, str]]:
    """``(id, owner)`` pairs: deployment model names, personas, and models listed in the config."""
    seen: set[str] = set()
    config = gw.config
    for deployment in _items(_get(config, "deployments") if config is not None else None):
        for name in (_get(deployment, "model_name"), _get(deployment, "name")):
            if name and name not in seen:
                seen.add(name)
                yield name, str(_get(deployment, "provider") or "deployment")
    personas = _get(config, "personas") if config is not None else None
    for item in _items(personas):
        name = item[0] if isinstance(item, tuple) else _get(item, "name")
        if name and persona_address(name) not in seen:
            seen.add(persona_address(name))
            yield persona_address(name), "persona"
    models = list(gw.extra_models)
    if "local" not in seen and local_available(gw.settings):
        models.append("local")
    for model in models:
        if model not in seen:
            seen.add(model)
            provider = parse_address(model).provider
            yield model, provider if provider is not None else model


log = logging.getLogger(__name__)
# Neither the catalogue nor a config says when a model was released; lists show when this process started.
_STARTED = int(time.time())


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One address a client may put in ``model``, as every surface's model list shows it."""

    id: str
    owned_by: str
    display_name: str
    created: int = _STARTED


@functools.cache
def _provider_models(name: str) -> tuple[tuple[str, str], ...]:
    """``(model, display name)`` a provider advertises: its catalogue models its adapter serves, plus
    the adapter's own extras. Computed once per process (the bundled catalogue never changes)."""
    try:
        cls = provider_class(name)
    except ImportError as exc:  # an adapter whose optional package is missing lists nothing
        log.info("provider %s not listed: %s", name, exc)
        return ()
    listed = [(m, display) for m, display in catalogue_models(name) if cls.lists_model(m)]
    listed += [(m, m) for m in cls.listed_models]
    return tuple(listed)


def model_entries(gw: Gateway) -> list[ModelEntry]:
    """Deployments, personas and config-listed models first, then every configured provider's models
    as ``provider/model`` addresses (a provider without a key is not listed: its calls would fail)."""
    entries = [ModelEntry(model, owner, model) for model, owner in model_ids(gw)]
    seen = {e.id for e in entries}
    for name, configured in configured_providers(gw.settings, gw.config).items():
        if not configured:
            continue
        for model, display in _provider_models(name):
            address = f"{name}/{model}"
            if address not in seen:
                seen.add(address)
                entries.append(ModelEntry(address, name, display))
    return entries


def visible_models(gw: Gateway, principal: Any) -> list[ModelEntry]:
    """The entries this caller may use (a key limited to models or personas sees only those): what
    every model-list surface (OpenAI, Anthropic, Gemini shapes) shows."""
    return [e for e in model_entries(gw) if principal.allows(e.id)]
