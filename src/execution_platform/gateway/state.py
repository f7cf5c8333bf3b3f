"""Everything a request handler needs, built once per app and reached via ``request.app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Capabilities
from ..storage.keys import KeyStore
from .auth import Authenticator
from .limits import Limits
from .metrics import Metrics
from .observe import Observer


@dataclass(slots=True)
class Gateway:
    settings: Any
    config: Any
    client: Any
    limits: Limits
    keys: KeyStore
    authenticator: Authenticator
    metrics: Metrics
    observer: Observer
    tools: Any = None
    # Seconds to wait for the first upstream event before committing stream headers.
    first_event_wait: float = 10.0
    keepalive: float = 15.0
    # provider/model addresses advertised on /v1/models besides deployments and personas.
    extra_models: tuple[str, ...] = ()
    capability_cache: dict[str, Capabilities | None] = field(default_factory=dict)
