"""Every tool result is scrubbed of credentials before it reaches a model or a client.

Tool output is text an attacker can shape (a file the model wrote, an MCP server's answer), so a
provider key echoed through any kind of tool (built-in, Python function, MCP) must not come back.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from execution_platform.config.settings import Settings
from execution_platform.errors import register_secret
from execution_platform.gateway.app import create_app
from execution_platform.storage.keys import MemoryKeyStore
from execution_platform.tools import ToolRegistry
from execution_platform.tools.builtins import builtin_tools
from execution_platform.tools.mcp_servers import MCPServerConfig, MCPTools
from execution_platform.tools.registry import result_text
from execution_platform.tools.sandbox import Workspace
from tests.fakes.base import FakeUpstream
from tests.gateway.server import start_gateway
from tests.tools.mcp_server import SERVER_SOURCE

KEY_SHAPED = "sk-proj-leaked0123456789abcdef"
CONFIGURED = "configured-provider-credential-9x8y7z"  # no recognisable shape: known because configured


class Report(BaseModel):
    owner: str
    notes: list[str]


def _registry(ws: Workspace) -> ToolRegistry:
    registry = ToolRegistry(builtin_tools(ws, include=("read_file", "search")))

    @registry.register
    def leak_text() -> str:
        """Returns a credential verbatim."""
        return f"the key is {KEY_SHAPED}"

    @registry.register
    async def leak_nested() -> dict[str, Any]:
        """Returns credentials deep inside structured data."""
        return {"a": [{"b": CONFIGURED}, f"Bearer {KEY_SHAPED}"], "n": 3}

    @registry.register
    def leak_model() -> Report:
        """Returns a pydantic model holding a credential."""
        return Report(owner="me", notes=[f"api_key={KEY_SHAPED}"])

    return registry


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ToolRegistry]]:
    register_secret(CONFIGURED)
    ws = Workspace(tmp_path / "workspace")
    (ws.root / "notes.txt").write_text(f"deploy with {KEY_SHAPED}\nand {CONFIGURED}\n")
    script = tmp_path / "probe_server.py"
    script.write_text(SERVER_SOURCE)
    registry = _registry(ws)
    app = create_app(Settings(_env_file=None, workspace_root=ws.root), key_store=MemoryKeyStore(), tools=registry)
    server = MCPServerConfig(
        name="probe", command=sys.executable, args=[str(script)], env={"LEAK": KEY_SHAPED}, timeout=20
    )
    async with MCPTools([server], registry):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http, registry


CALLS = [
    ("read_file", {"path": "notes.txt"}),
    ("search", {"query": "with|and", "regex": True}),
    ("leak_text", {}),
    ("leak_nested", {}),
    ("leak_model", {}),
    ("probe__env_probe", {"name": "LEAK"}),
]


async def test_no_tool_result_carries_a_credential(gateway: tuple[httpx.AsyncClient, ToolRegistry]) -> None:
    http, registry = gateway
    for name, args in CALLS:
        response = await http.post("/v1/tools/invoke", json={"name": name, "args": args})
        assert response.status_code == 200, (name, response.text)
        body = response.text
        assert "***" in body, (name, body)  # something was there and was removed
        assert "leaked0123456789" not in body and CONFIGURED not in body, (name, body)
        # The same for what a model is shown by the tool loop (the registry is its only way in).
        shown = result_text(await registry.invoke(name, args))
        assert "leaked0123456789" not in shown and CONFIGURED not in shown, (name, shown)


def test_scrubbing_megabytes_of_output_does_not_stall_the_gateway(fake_servers: dict[str, FakeUpstream]) -> None:
    registry = ToolRegistry()

    @registry.register
    def big() -> str:
        """Twenty megabytes of output with a credential at the end."""
        return "a" * 20_000_000 + f" {KEY_SHAPED}"

    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, tools=registry)
    stop, worst = threading.Event(), [0.0]

    def poll() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/health").raise_for_status()
                worst[0] = max(worst[0], time.perf_counter() - started)
                time.sleep(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.1)
        response = httpx.post(server.url + "/v1/tools/invoke", json={"name": "big", "args": {}}, timeout=120)
    finally:
        stop.set()
        poller.join()
        server.stop()
    print(f"worst /health latency while scrubbing 20 MB: {worst[0]:.3f}s")
    assert response.status_code == 200
    assert response.json()["result"].endswith(" ***")
    # Scrubbed inline with backtracking ``re`` this was over 2 s; serving 20 MB alone costs ~0.15 s here.
    assert worst[0] < 1.0
