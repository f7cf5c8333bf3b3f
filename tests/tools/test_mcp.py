"""MCP servers written here with the official ``mcp`` package: tools listed, validated, called, used in a loop."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from execution_platform.errors import InvalidRequestError, ToolExecutionError, UpstreamConnectionError
from execution_platform.providers.http import HttpClient
from execution_platform.providers.registry import provider_class
from execution_platform.tools import Agent, ToolRegistry
from execution_platform.tools.mcp_servers import MCPConnection, MCPServerConfig, MCPTools
from tests.fakes.base import FakeUpstream
from tests.fakes.script import Reply, ToolCallSpec
from tests.tools.mcp_server import SERVER_SOURCE


@pytest.fixture
def stdio_config(tmp_path: Path) -> MCPServerConfig:
    script = tmp_path / "weather_server.py"
    script.write_text(SERVER_SOURCE)
    return MCPServerConfig(name="weather", command=sys.executable, args=[str(script)], timeout=20)


async def test_stdio_tools_are_listed_validated_and_called(
    stdio_config: MCPServerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EP_OPENAI_API_KEY", "sk-fake-secret-for-mcp-123456")
    registry = ToolRegistry()
    async with MCPTools([stdio_config], registry):
        listed = {t["name"]: t for t in registry.describe()}
        assert set(listed) == {"weather__temperature", "weather__fail", "weather__env_probe"}
        temp = listed["weather__temperature"]
        assert temp["source"] == "mcp:weather"
        assert temp["description"] == "Current temperature in Celsius."
        assert temp["parameters"]["properties"]["city"]["type"] == "string"
        assert temp["parameters"]["required"] == ["city"]

        assert await registry.invoke("weather__temperature", {"city": "Paris"}) == "15"
        with pytest.raises(InvalidRequestError, match="city") as caught:
            await registry.invoke("weather__temperature", {"city": 5})
        assert caught.value.param == "city"
        with pytest.raises(InvalidRequestError, match="'city' is a required property"):
            await registry.invoke("weather__temperature", {})
        with pytest.raises(ToolExecutionError, match="boom"):
            await registry.invoke("weather__fail", {"reason": "boom"})
        # The server process does not inherit the platform's secrets.
        assert await registry.invoke("weather__env_probe", {"name": "EP_OPENAI_API_KEY"}) == "<unset>"
    assert len(registry) == 0  # unmounted on exit


async def test_stdio_tools_in_a_loop_run_through_a_provider(
    stdio_config: MCPServerConfig, fake_openai: FakeUpstream
) -> None:
    fake_openai.enqueue(
        Reply(
            text=None,
            tool_calls=[
                ToolCallSpec("weather__temperature", {"city": "Oslo"}, id="t_oslo"),
                ToolCallSpec("weather__fail", {"reason": "station closed"}, id="t_fail"),
            ],
        ),
        Reply(text="It is 4 degrees in Oslo."),
    )
    http = HttpClient()
    provider = provider_class("openai")(api_key=fake_openai.api_key, base_url=fake_openai.base_url, http=http)
    registry = ToolRegistry()
    try:
        async with MCPTools([stdio_config], registry):
            result = await Agent(provider, "gpt-4o-mini", registry, allowed_tools=["weather__*"]).run(
                "How cold is Oslo?"
            )
    finally:
        await http.aclose()
    assert result.text == "It is 4 degrees in Oslo."
    first, second = (r.body for r in fake_openai.requests if r.method == "POST")
    offered = {t["function"]["name"] for t in first["tools"]}
    assert offered == {"weather__temperature", "weather__fail", "weather__env_probe"}
    results = {m["tool_call_id"]: m["content"] for m in second["messages"] if m["role"] == "tool"}
    assert results["t_oslo"] == "4"
    assert "station closed" in results["t_fail"]


async def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    config = MCPServerConfig(name="broken", command=str(tmp_path / "does-not-exist"))
    with pytest.raises(UpstreamConnectionError, match="cannot connect to MCP server 'broken'"):
        async with MCPConnection(config):
            pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """The same kind of server over streamable HTTP, served by uvicorn in a thread."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("calc")

    @server.tool()
    def multiply(a: int, b: int) -> int:
        """a times b."""
        return a * b

    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=0, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "MCP HTTP server did not start"
        time.sleep(0.02)
    port = runner.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/mcp"
    runner.should_exit = True
    thread.join(5)


@pytest.mark.parametrize("headers", [None, {"X-Team": "tools"}], ids=["plain", "with-headers"])
async def test_streamable_http_tools(http_server: str, headers: dict[str, str] | None) -> None:
    registry = ToolRegistry()
    config = MCPServerConfig(name="calc", url=http_server, headers=headers, prefix="")
    async with MCPTools([config], registry):
        assert [t["name"] for t in registry.describe()] == ["multiply"]
        assert await registry.invoke("multiply", {"a": 6, "b": 7}) == "42"
        with pytest.raises(InvalidRequestError):
            await registry.invoke("multiply", {"a": "six", "b": 7})


def test_config_needs_one_transport() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        MCPServerConfig(name="x")
    with pytest.raises(ValueError, match="exactly one"):
        MCPServerConfig(name="x", command="a", url="http://b")
