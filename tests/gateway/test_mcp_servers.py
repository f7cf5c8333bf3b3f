"""MCP servers from the YAML config: started with the gateway, listed and invoked through ``/v1/tools``.

One gateway (one MCP server process) serves every check of the file; persona allow-lists apply when
the call names a persona, and a server that cannot start leaves the gateway up without its tools.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from execution_platform.config.file import parse_config
from tests.tools.mcp_server import SERVER_SOURCE

MASTER = "sk-master-mcp-test"


def config_text(script: Path) -> str:
    return f"""
mcp_servers:
  weather: {{command: '{sys.executable}', args: ['{script}'], timeout: 20}}
  broken: {{command: '{sys.executable}', args: ['-c', 'import sys; sys.exit(3)'], timeout: 5}}
personas:
  reviewer:
    targets: [openai/gpt-4o-mini]
    tools: [read_file, 'weather__temp*']
  anything:
    targets: [openai/gpt-4o-mini]
  silent:
    targets: [openai/gpt-4o-mini]
    tools: []
"""


@pytest.fixture(scope="module")
def gw(fake_servers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.gateway.server import start_gateway

    root = tmp_path_factory.mktemp("mcp-gw")
    script = root / "weather_server.py"
    script.write_text(SERVER_SOURCE)
    handler = _Capture()
    logging.getLogger("execution_platform.gateway").addHandler(handler)
    try:
        fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
        server = start_gateway(
            fakes, {"master_key": MASTER, "workspace_root": root / "workspace"}, config=parse_config(config_text(script))
        )
    finally:
        logging.getLogger("execution_platform.gateway").removeHandler(handler)
    server.logs = handler.messages
    yield server
    server.stop()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


def call(gw: Any, method: str, path: str, *, persona: str | None = None, key: str = MASTER, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if persona:
        headers["X-EP-Persona"] = persona
    return httpx.request(method, gw.url + path, headers=headers, timeout=30, **kw)


def test_configured_server_tools_are_listed_with_json_schemas(gw: Any) -> None:
    tools = {t["name"]: t for t in call(gw, "GET", "/v1/tools").json()["data"]}
    assert {"weather__temperature", "weather__fail", "weather__env_probe", "read_file"} <= set(tools)
    assert tools["weather__temperature"]["parameters"]["properties"]["city"] == {"type": "string"}
    assert tools["weather__temperature"]["parameters"]["required"] == ["city"]


def test_configured_server_tools_are_invoked(gw: Any) -> None:
    r = call(gw, "POST", "/v1/tools/invoke", json={"name": "weather__temperature", "args": {"city": "Paris"}})
    assert r.status_code == 200 and r.json() == {"ok": True, "result": "15"}
    r = call(gw, "POST", "/v1/tools/invoke", json={"name": "weather__fail", "args": {"reason": "no sky"}})
    assert r.status_code == 422 and "no sky" in r.json()["error"]["message"]


def test_a_server_that_cannot_start_is_logged_and_the_gateway_runs_without_it(gw: Any) -> None:
    errors = [msg for level, msg in gw.logs if level == logging.ERROR]
    assert any("MCP server 'broken' did not start" in msg for msg in errors), gw.logs
    assert not any("'weather'" in msg for msg in errors)
    names = [t["name"] for t in call(gw, "GET", "/v1/tools").json()["data"]]
    assert not any(name.startswith("broken__") for name in names)
    assert httpx.get(gw.url + "/health").status_code == 200


def test_persona_allow_list_applies_to_listing_and_invoking(gw: Any) -> None:
    listed = [t["name"] for t in call(gw, "GET", "/v1/tools", persona="reviewer").json()["data"]]
    assert sorted(listed) == ["read_file", "weather__temperature"]
    ok = call(gw, "POST", "/v1/tools/invoke", persona="reviewer",
              json={"name": "weather__temperature", "args": {"city": "Oslo"}})
    assert ok.status_code == 200 and ok.json()["result"] == "4"
    refused = call(gw, "POST", "/v1/tools/invoke", persona="reviewer",
                   json={"name": "weather__env_probe", "args": {"name": "HOME"}})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "tool_not_allowed"
    assert "reviewer" in refused.json()["error"]["message"]
    assert call(gw, "GET", "/v1/tools", persona="silent").json()["data"] == []
    anything = call(gw, "POST", "/v1/tools/invoke", persona="anything",
                    json={"name": "weather__env_probe", "args": {"name": "EP_MASTER_KEY"}})
    assert anything.status_code == 200 and anything.json()["result"] == "<unset>"  # no secrets passed on
    unknown = call(gw, "GET", "/v1/tools", persona="nobody")
    assert unknown.status_code == 404


def test_persona_scoped_key_uses_tools_only_through_its_personas(gw: Any) -> None:
    created = call(gw, "POST", "/admin/keys", json={"name": "rev", "personas": ["reviewer"]})
    assert created.status_code in (200, 201), created.text
    key = created.json()["key"]
    bare = call(gw, "POST", "/v1/tools/invoke", key=key, json={"name": "weather__env_probe", "args": {"name": "X"}})
    assert bare.status_code == 403
    other = call(gw, "GET", "/v1/tools", key=key, persona="anything")
    assert other.status_code == 403
    own = call(gw, "POST", "/v1/tools/invoke", key=key, persona="reviewer",
               json={"name": "weather__temperature", "args": {"city": "Paris"}})
    assert own.status_code == 200 and own.json()["result"] == "15"
