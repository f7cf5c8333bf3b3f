"""A provider's server tools never reach another provider, and custom tools are never lost beside them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from execution_platform.codecs import gemini as gemini_codec
from execution_platform.errors import UnsupportedParameterError
from tests.gateway.server import settings_for

from .params_support import UPSTREAMS, body_for, crossed, error_of, post, start

__all__ = ["start"]

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
CUSTOM = {"name": "lookup", "description": "find a thing", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def gw(fake_servers: Any) -> Any:
    from tests.gateway.server import start_gateway

    server = start_gateway({name: fake_servers[name] for name in UPSTREAMS})
    yield server
    server.stop()


@pytest.mark.parametrize("upstream", ["openai", "gemini"])
def test_anthropic_server_tool_to_another_provider_is_a_400_naming_it(gw: Any, fake_servers: Any,
                                                                       upstream: str) -> None:
    fake_servers[upstream].reset()
    r = post(gw, "anthropic", body_for("anthropic", UPSTREAMS[upstream], tools=[CUSTOM, WEB_SEARCH]))
    assert r.status_code == 400, r.text
    assert "web_search" in error_of("anthropic", r)["message"]
    assert fake_servers[upstream].last_body is None


def test_same_provider_keeps_server_and_custom_tools(gw: Any, fake_anthropic: Any) -> None:
    r = post(gw, "anthropic", body_for("anthropic", UPSTREAMS["anthropic"], tools=[CUSTOM, WEB_SEARCH]))
    assert r.status_code == 200, r.text
    assert crossed(fake_anthropic)["tools"] == [CUSTOM, WEB_SEARCH]


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_gemini_builtin_tool_to_another_provider_is_refused(fake_servers: Any, upstream: str) -> None:
    from execution_platform.client import Client

    fake_servers[upstream].reset()
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "OBJECT"}}]},
                  {"googleSearch": {}}],
    }

    async def call() -> None:
        client = Client(settings_for({name: fake_servers[name] for name in UPSTREAMS}))
        try:
            await client.send(gemini_codec.decode_request(body, model=UPSTREAMS[upstream]))
        finally:
            await client.aclose()

    with pytest.raises(UnsupportedParameterError, match="googleSearch"):
        asyncio.run(call())
    assert fake_servers[upstream].last_body is None


FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
CUSTOM_GRAMMAR = {"type": "custom", "custom": {"name": "sql", "description": "raw SQL"}}


@pytest.mark.parametrize("upstream", ["anthropic", "gemini"])
@pytest.mark.parametrize(("extra", "named"), [
    ({"tools": [FUNCTION, CUSTOM_GRAMMAR]}, "sql"),
    ({"tools": [FUNCTION], "web_search_options": {}}, "web_search_options"),
])
def test_openai_builtin_tools_to_another_provider_are_refused(gw: Any, fake_servers: Any, upstream: str,
                                                              extra: dict[str, Any], named: str) -> None:
    fake_servers[upstream].reset()
    r = post(gw, "openai", body_for("openai", UPSTREAMS[upstream], **extra))
    assert r.status_code == 400, r.text
    assert named in error_of("openai", r)["message"]
    assert fake_servers[upstream].last_body is None


def test_openai_builtin_tools_reach_openai_beside_function_tools(gw: Any, fake_openai: Any) -> None:
    r = post(gw, "openai", body_for("openai", UPSTREAMS["openai"], tools=[FUNCTION, CUSTOM_GRAMMAR],
                                    web_search_options={}))
    assert r.status_code == 200, r.text
    sent = crossed(fake_openai)
    assert sent["tools"] == [FUNCTION, CUSTOM_GRAMMAR] and sent["web_search_options"] == {}
