"""The tool loop end to end through each real adapter and its fake upstream: same task, same outcome.

The tool results are checked where it matters: in the request bodies the upstream actually received,
in each provider's own wire shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from execution_platform.providers.base import Provider
from execution_platform.providers.http import HttpClient
from execution_platform.providers.registry import provider_class
from execution_platform.tools import Agent, ToolRegistry
from tests.fakes.base import FakeUpstream
from tests.fakes.script import Reply, ToolCallSpec

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
FINAL = "Paris is 11 degrees warmer than Oslo; the humidity sensor is offline."

# A tool result as seen on the wire: (call id or tool name, text, is_error when the wire says so)
WireResult = tuple[str, str, bool | None]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [])


def openai_results(body: dict[str, Any]) -> list[WireResult]:
    return [(m["tool_call_id"], _text(m["content"]), None) for m in body["messages"] if m["role"] == "tool"]


def anthropic_results(body: dict[str, Any]) -> list[WireResult]:
    return [
        (b["tool_use_id"], _text(b.get("content")), bool(b.get("is_error", False)))
        for m in body["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]


def gemini_results(body: dict[str, Any]) -> list[WireResult]:
    out: list[WireResult] = []
    for content in body["contents"]:
        for part in content["parts"]:
            fr = part.get("functionResponse") or part.get("function_response")
            if fr:
                response = fr["response"]
                text = response.get("error", response.get("output", orjson.dumps(response).decode()))
                out.append((fr["name"], text, "error" in response))
    return out


EXTRACT: dict[str, Callable[[dict[str, Any]], list[WireResult]]] = {
    "openai": openai_results,
    "anthropic": anthropic_results,
    "gemini": gemini_results,
}


@pytest.fixture(params=list(MODELS))
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, FakeUpstream, Provider]]:
    name: str = request.param
    fake: FakeUpstream = request.getfixturevalue(f"fake_{name}")
    http = HttpClient()
    provider = provider_class(name)(api_key=fake.api_key, base_url=fake.base_url, http=http)
    yield name, fake, provider
    await http.aclose()


def make_registry() -> ToolRegistry:
    reg = ToolRegistry(default_timeout=5)
    barrier = asyncio.Barrier(2)

    @reg.register
    async def temperature(city: str) -> int:
        """Current temperature in Celsius."""
        async with asyncio.timeout(2):  # both parallel calls must be running at the same time
            await barrier.wait()
        return {"Oslo": 4, "Paris": 15}[city]

    @reg.register
    def difference(a: int, b: int) -> int:
        """a minus b."""
        return a - b

    @reg.register
    def humidity(city: str) -> int:
        """Relative humidity in percent."""
        raise RuntimeError("humidity sensor offline")

    return reg


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
async def test_two_step_tool_task_on_every_provider(
    upstream: tuple[str, FakeUpstream, Provider], stream: bool
) -> None:
    name, fake, provider = upstream
    fake.enqueue(
        Reply(
            text=None,
            tool_calls=[
                ToolCallSpec("temperature", {"city": "Paris"}, id="call_paris"),
                ToolCallSpec("temperature", {"city": "Oslo"}, id="call_oslo"),
            ],
        ),
        Reply(
            text=None,
            tool_calls=[
                ToolCallSpec("difference", {"a": 15, "b": 4}, id="call_diff"),
                ToolCallSpec("humidity", {"city": "Paris"}, id="call_hum"),
            ],
        ),
        Reply(text=FINAL),
    )
    agent = Agent(provider, MODELS[name], make_registry(), stream=stream, max_steps=5)
    result = await agent.run("How much warmer is Paris than Oslo, and how humid is it?")

    assert result.stop_reason == "final_answer"
    assert result.text == FINAL
    assert result.steps == 3
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 3
    extract = EXTRACT[name]

    # The tools were offered on the wire.
    assert "temperature" in orjson.dumps(posts[0].body).decode()
    assert extract(posts[0].body) == []

    # Step 2's request carries both parallel results, in call order.
    second = extract(posts[1].body)
    assert [text for _, text, _ in second] == ["15", "4"]
    if name != "gemini":  # Gemini ties results to calls by name and order; the others by id
        assert [ref for ref, _, _ in second] == ["call_paris", "call_oslo"]
    assert all(is_error in (None, False) for _, _, is_error in second)

    # Step 3's request carries the difference and the failing tool's error as a tool result.
    third = extract(posts[2].body)[2:]
    assert len(third) == 2
    assert third[0][1] == "11"
    error_ref, error_text, error_flag = third[1]
    assert "humidity sensor offline" in error_text
    assert error_flag in (None, True)  # OpenAI's wire has no error flag; the text says it
    if name == "anthropic":
        assert error_ref == "call_hum" and error_flag is True
    if name == "gemini":
        assert error_ref == "humidity" and error_flag is True


async def test_loop_through_the_client_uses_provider_addresses(fake_anthropic: FakeUpstream) -> None:
    from execution_platform.client import Client
    from execution_platform.config.settings import Settings

    http = HttpClient()
    provider = provider_class("anthropic")(api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url, http=http)
    client = Client(Settings(_env_file=None), providers={"anthropic": provider})
    fake_anthropic.enqueue(
        Reply(text=None, tool_calls=[ToolCallSpec("difference", {"a": 9, "b": 2}, id="toolu_1")]),
        Reply(text="7"),
    )
    try:
        result = await Agent(client, "anthropic/claude-sonnet-4-5", make_registry(), allowed_tools=["difference"]).run(
            "9 - 2?"
        )
    finally:
        await http.aclose()
    assert result.text == "7"
    first, second = (r.body for r in fake_anthropic.requests if r.method == "POST")
    assert first["model"] == "claude-sonnet-4-5"
    assert [t["name"] for t in first["tools"]] == ["difference"]
    assert anthropic_results(second) == [("toolu_1", "7", False)]
