"""Calls to the real provider APIs, skipped unless the provider's key is set in the environment.

Run with e.g. ``EP_OPENAI_API_KEY=... pytest tests/live``. Models can be overridden with
``EP_LIVE_OPENAI_MODEL`` / ``EP_LIVE_ANTHROPIC_MODEL`` / ``EP_LIVE_GEMINI_MODEL``.
"""

from __future__ import annotations

import os

import pytest

from execution_platform.client import Client
from execution_platform.config.settings import Settings
from execution_platform.model import StreamAccumulator

LIVE = {
    "openai": (("EP_OPENAI_API_KEY", "OPENAI_API_KEY"), "gpt-4o-mini"),
    "anthropic": (("EP_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"), "claude-haiku-4-5"),
    "gemini": (("EP_GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"), "gemini-2.5-flash"),
}

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _model(provider: str) -> str:
    env_names, default = LIVE[provider]
    if not any(os.environ.get(name) for name in env_names):
        pytest.skip(f"live test: set {env_names[0]} to run it")
    return f"{provider}/{os.environ.get(f'EP_LIVE_{provider.upper()}_MODEL', default)}"


pytestmark = [pytest.mark.live, pytest.mark.parametrize("provider", sorted(LIVE))]


async def test_live_text(provider: str) -> None:
    model = _model(provider)
    async with Client(Settings()) as client:
        answer = await client.chat(
            model=model,
            messages=[{"role": "system", "content": "Answer with one word."}, {"role": "user", "content": "Say hi"}],
            max_tokens=50,
        )
    assert answer.message.text.strip()
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0


async def test_live_stream_and_tool_call(provider: str) -> None:
    model = _model(provider)
    async with Client(Settings()) as client:
        acc = StreamAccumulator()
        async for event in client.stream(
            model=model,
            messages=[{"role": "user", "content": "What's the weather in Paris? Use the tool."}],
            tools=[WEATHER_TOOL],
            tool_choice="required",
            max_tokens=200,
        ):
            acc.add(event)
    answer = acc.response()
    assert answer.finish_reason == "tool_calls"
    assert answer.message.tool_calls[0].name == "get_weather"
    assert "city" in answer.message.tool_calls[0].arguments
    assert answer.usage.output_tokens > 0
