"""Run the gateway app with uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from execution_platform.config.settings import Settings
from execution_platform.gateway.app import create_app
from tests.fakes.base import FakeUpstream


def settings_for(fakes: dict[str, FakeUpstream], **extra: Any) -> Settings:
    """Settings pointing every provider at its fake (keys and base URLs as the official SDKs use)."""
    values: dict[str, Any] = {}
    for name in ("openai", "anthropic", "gemini"):
        fake = fakes[name]
        values[f"{name}_api_key"] = fake.api_key
        values[f"{name}_base_url"] = fake.base_url
    # No local model behind these gateways (tests/local runs the real engine on its own): fuzzed requests
    # must not start an engine, and "local" is then neither listed nor the default.
    values["local_model"] = "off"
    values.update(extra)
    if values.get("database_url") is None:  # the ledger (and SQL keys) in a private file, never the cwd
        values["database_url"] = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ep-gw-')) / 'ep.db'}"
    return Settings(_env_file=None, **values)


class GatewayServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, loop="asyncio", http="httptools", log_config=None, access_log=True, lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="gateway", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_gateway(fakes: dict[str, FakeUpstream], settings: dict[str, Any] | None = None, **app_kwargs: Any) -> GatewayServer:
    from execution_platform.storage.keys import MemoryKeyStore

    app_kwargs.setdefault("key_store", MemoryKeyStore())
    app = create_app(settings_for(fakes, **(settings or {})), **app_kwargs)
    return GatewayServer(app).start()
