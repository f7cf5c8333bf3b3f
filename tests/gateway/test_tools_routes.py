"""``/v1/tools`` and ``/v1/tools/invoke`` over the app's tool registry."""

from __future__ import annotations

import httpx

from execution_platform.tools import ToolRegistry


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.register
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @registry.register
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    return registry


def test_list_and_invoke(make_gateway) -> None:
    gw = make_gateway(tools=_registry())
    listed = httpx.get(gw.url + "/v1/tools").json()["data"]
    add = next(t for t in listed if t["name"] == "add")
    assert add["description"].startswith("Add two integers")
    assert set(add["parameters"]["properties"]) == {"a", "b"}
    ok = httpx.post(gw.url + "/v1/tools/invoke", json={"name": "add", "args": {"a": 2, "b": 3}})
    assert ok.status_code == 200 and ok.json() == {"ok": True, "result": 5}
    bad = httpx.post(gw.url + "/v1/tools/invoke", json={"name": "add", "args": {"a": "x"}})
    assert bad.status_code == 400 and bad.json()["error"]["message"]
    missing = httpx.post(gw.url + "/v1/tools/invoke", json={"name": "nope", "args": {}})
    assert missing.status_code == 404
    failed = httpx.post(gw.url + "/v1/tools/invoke", json={"name": "explode"})
    assert 400 <= failed.status_code < 500 and "kaboom" in failed.json()["error"]["message"]


def test_docs_and_openapi(gateway) -> None:
    assert httpx.get(gateway.url + "/docs").status_code == 200
    spec = httpx.get(gateway.url + "/openapi.json").json()
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["model", "messages"]
    assert "ChatRequest" in spec["components"]["schemas"]
