"""What the ``model`` field of a request names, parsed in one place.

A model address is one of: ``persona:NAME`` (a persona's policy picks the targets), a deployment name
or a model group (both from the config), ``provider/model`` (the model part may hold more slashes),
or a bare provider that serves one configured model (``local``). The gateway, routing, the config
checks and the provider registry all ask this module instead of slicing strings themselves, so a new
spelling is taught here once. It lives in ``model`` because every layer may import it.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Literal

PERSONA_PREFIX = "persona:"
BARE_PROVIDERS = frozenset({"local"})  # providers addressed by their name alone (one configured model)

AddressKind = Literal["persona", "deployment", "group", "provider_model", "bare", "unknown"]


@dataclass(frozen=True, slots=True)
class ModelAddress:
    """One parsed address; ``provider``/``model`` are set for ``provider_model`` and ``bare``
    (whose model is ``"default"``), ``persona`` for ``persona``."""

    text: str
    kind: AddressKind
    provider: str | None = None
    model: str | None = None
    persona: str | None = None

    @property
    def is_persona(self) -> bool:
        return self.kind == "persona"


def persona_address(name: str) -> str:
    """The address of a persona: ``persona:NAME``."""
    return PERSONA_PREFIX + name


def persona_of(text: str) -> str | None:
    """The persona ``text`` addresses, else None: what ``parse_address(text).persona`` says, without
    building the address (every model call asks this)."""
    return text[len(PERSONA_PREFIX) :] if text.startswith(PERSONA_PREFIX) else None


def provider_of(text: str) -> str | None:
    """The provider of a ``provider/model`` address, else None: ``parse_address(text, bare=()).provider``
    without building the address (a stream's headers ask it while the upstream has not said)."""
    if text.startswith(PERSONA_PREFIX):
        return None
    provider, sep, model = text.partition("/")
    return provider if sep and model else None


def parse_address(
    text: str,
    *,
    deployments: Container[str] = (),
    groups: Container[str] = (),
    bare: Container[str] = BARE_PROVIDERS,
) -> ModelAddress:
    """Classify ``text``. Deployment and group names win over the ``provider/model`` reading (a config
    may name a deployment ``openai/fast``); pass them when the config is at hand."""
    if text.startswith(PERSONA_PREFIX):
        return ModelAddress(text, "persona", persona=text[len(PERSONA_PREFIX) :])
    if text in deployments:
        return ModelAddress(text, "deployment")
    if text in groups:
        return ModelAddress(text, "group")
    if text in bare:
        return ModelAddress(text, "bare", provider=text, model="default")
    provider, sep, model = text.partition("/")
    if sep and model:  # an empty provider is left for the registry to reject by name
        return ModelAddress(text, "provider_model", provider=provider, model=model)
    return ModelAddress(text, "unknown")
