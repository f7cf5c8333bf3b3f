"""What the gateway can name: deployments and personas from the config, models from its providers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..state import Gateway

PROVIDER_KEYS = {"openai": "openai_api_key", "anthropic": "anthropic_api_key", "gemini": "gemini_api_key"}


def configured_providers(settings: Any, config: Any = None) -> dict[str, bool]:
    """Which providers have a key: from env, the YAML ``providers`` block or a deployment's own key."""
    blocks = (_get(config, "providers") if config is not None else None) or {}
    deployments = _items(_get(config, "deployments") if config is not None else None)
    status = {}
    for name, attr in PROVIDER_KEYS.items():
        block = blocks.get(name) if isinstance(blocks, dict) else None
        status[name] = bool(
            settings.secret(attr)
            or (block is not None and _get(block, "api_key"))
            or any(_get(d, "provider") == name and _get(d, "api_key") for d in deployments)
        )
    return status


def local_available(settings: Any) -> bool:
    """Whether the ``local`` provider has a model file to serve (``EP_LOCAL_MODEL`` or the shipped one)."""
    if getattr(settings, "local_model", None):
        return True
    from ...providers._local_supervisor import shipped_model

    return shipped_model() is not None


def default_model(gw: Gateway) -> str | None:
    """The model for a request that names none: ``local`` when no cloud provider has a key."""
    if any(configured_providers(gw.settings, gw.config).values()):
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
        if name and f"persona:{name}" not in seen:
            seen.add(f"persona:{name}")
            yield f"persona:{name}", "persona"
    models = list(gw.extra_models)
    if "local" not in seen and local_available(gw.settings):
        models.append("local")
    for model in models:
        if model not in seen:
            seen.add(model)
            yield model, model.partition("/")[0]
