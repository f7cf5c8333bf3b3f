"""The registry behind the gateway's ``GET /v1/tools`` and ``POST /v1/tools/invoke``: MCP and built-ins."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from execution_platform.config.settings import Settings
from execution_platform.gateway.app import create_app
from execution_platform.storage.keys import MemoryKeyStore
from execution_platform.tools import ToolRegistry
from execution_platform.tools.builtins import builtin_tools
from execution_platform.tools.mcp_servers import MCPServerConfig, MCPTools
from execution_platform.tools.sandbox import Workspace
from tests.tools.mcp_server import SERVER_SOURCE


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Workspace]]:
    script = tmp_path / "weather_server.py"
    script.write_text(SERVER_SOURCE)
    workspace = Workspace(tmp_path / "workspace")
    (tmp_path / "outside.txt").write_text("outside")
    registry = ToolRegistry(builtin_tools(workspace))
    settings = Settings(_env_file=None, workspace_root=tmp_path / "workspace")
    app = create_app(settings, key_store=MemoryKeyStore(), tools=registry)
    mcp_server = MCPServerConfig(name="weather", command=sys.executable, args=[str(script)], timeout=20)
    async with MCPTools([mcp_server], registry):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http, workspace


async def test_tools_are_listed_with_json_schemas(gateway: tuple[httpx.AsyncClient, Workspace]) -> None:
    http, _ = gateway
    response = await http.get("/v1/tools")
    assert response.status_code == 200
    tools = {t["name"]: t for t in response.json()["data"]}
    assert {"read_file", "write_file", "run_command", "weather__temperature"} <= set(tools)
    assert tools["weather__temperature"]["parameters"]["properties"]["city"] == {"type": "string"}
    assert tools["read_file"]["parameters"]["required"] == ["path"]


async def test_invoke_runs_mcp_and_builtin_tools(gateway: tuple[httpx.AsyncClient, Workspace]) -> None:
    http, workspace = gateway
    response = await http.post("/v1/tools/invoke", json={"name": "weather__temperature", "args": {"city": "Oslo"}})
    assert response.json() == {"ok": True, "result": "4"}
    response = await http.post(
        "/v1/tools/invoke", json={"name": "write_file", "args": {"path": "a.txt", "content": "hi"}}
    )
    assert response.status_code == 200 and response.json()["result"]["bytes_written"] == 2
    assert (workspace.root / "a.txt").read_text() == "hi"


REFUSALS = [
    ({"name": "read_file", "args": {"path": "../outside.txt"}}, 403, "outside the workspace"),
    ({"name": "run_command", "args": {"command": "python3 -V"}}, 403, "allow-list"),
    ({"name": "read_file", "args": {"path": 3}}, 400, "invalid arguments"),
    ({"name": "weather__temperature", "args": {}}, 400, "required property"),
    ({"name": "nope", "args": {}}, 404, "unknown tool"),
    ({"name": "weather__fail", "args": {"reason": "broken"}}, 422, "broken"),
]


async def test_refused_or_failed_calls_are_4xx_with_a_message(gateway: tuple[httpx.AsyncClient, Workspace]) -> None:
    http, _ = gateway  # one server for all cases: starting an MCP process per case would be slow
    for body, status, fragment in REFUSALS:
        response = await http.post("/v1/tools/invoke", json=body)
        assert (response.status_code, body) == (status, body)
        assert fragment in response.json()["error"]["message"], body
