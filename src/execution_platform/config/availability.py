"""Which providers can answer here: keys present, the local model's file, what counts as "cloud".

Both the gateway (``/health``, ``/capabilities``, the default model) and ``ep chat`` (local when no
cloud key is set) ask these questions, so they live below both, beside the configuration they read.
"""

from __future__ import annotations

from ..providers.registry import PROVIDERS, key_setting, usable_without_key
from .schema import Config
from .settings import Settings


def configured_providers(settings: Settings, config: Config | None = None) -> dict[str, bool]:
    """Which providers of the registry are usable: a key from env, the YAML ``providers`` block or a
    deployment's own key; a provider that needs no key counts when what it needs is installed."""
    blocks = config.providers if config is not None else {}
    deployments = config.deployments if config is not None else []
    status = {}
    for name in PROVIDERS:
        attr = key_setting(name, settings)
        if attr is None:
            status[name] = local_available(settings) if name == "local" else usable_without_key(name)
            continue
        block = blocks.get(name)
        status[name] = bool(
            settings.secret(attr)
            or (block is not None and block.api_key)
            or any(d.provider == name and d.api_key for d in deployments)
        )
    return status


# ``EP_LOCAL_MODEL=off``: no local model at all (a gateway that must never start an engine on its own).
LOCAL_OFF = frozenset({"off", "none", "disabled", "false", "0"})


def local_available(settings: Settings) -> bool:
    """Whether the ``local`` provider has a model file to serve (``EP_LOCAL_MODEL`` or the shipped one)."""
    value = getattr(settings, "local_model", None)
    if value is not None and str(value).strip().lower() in LOCAL_OFF:
        return False
    if value:
        return True
    from ..providers.local_supervisor import shipped_model

    return shipped_model() is not None


def cloud_configured(settings: Settings, config: Config | None = None) -> bool:
    """Whether a provider that needs a key has one (keyless ones such as claude_agent don't count)."""
    keyed = {name for name in PROVIDERS if key_setting(name, settings) is not None}
    return any(ok for name, ok in configured_providers(settings, config).items() if name in keyed)
