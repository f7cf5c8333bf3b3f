"""Everything a request handler needs, built once per app and reached via ``request.app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Capabilities
from ..storage.keys import KeyStore
from .auth import Authenticator
from .limits import Limits
from .metrics import Metrics
from .observe import Observer

if TYPE_CHECKING:  # kept out of the import path: the app builds these before it builds the Gateway
    from ..client import Client
    from ..config.schema import Config
    from ..config.settings import Settings
    from ..tools.registry import ToolRegistry


@dataclass(slots=True)
class Gateway:
    settings: Settings
    config: Config | None
    client: Client
    limits: Limits
    keys: KeyStore
    authenticator: Authenticator
    metrics: Metrics
    observer: Observer
    tools: ToolRegistry | None = None  # built on first use (see routes.tools.tool_registry)
    # Seconds to wait for the first upstream event before committing stream headers.
    first_event_wait: float = 10.0
    keepalive: float = 15.0
    # provider/model addresses advertised on /v1/models besides deployments and personas.
    extra_models: tuple[str, ...] = ()
    capability_cache: dict[str, Capabilities | None] = field(default_factory=dict)
