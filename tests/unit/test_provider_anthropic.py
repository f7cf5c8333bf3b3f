"""AnthropicProvider against FakeAnthropic: real HTTP, real SSE, Anthropic's real error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from execution_platform.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextLengthExceededError,
    EPError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from execution_platform.model import (
    ChatRequest,
    FinishEvent,
    Message,
    Reasoning,
    StartEvent,
    ToolCallDelta,
    ToolCallEnd,
    ToolSpec,
    UsageEvent,
)
from execution_platform.providers.anthropic import AnthropicProvider
from tests.adapters import adapter_on, asker
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.script import Fault, Reply, ToolCallSpec
from tests.streams import collect, without_ids

MODEL = "claude-sonnet-4-5"
ask = asker(MODEL)


@pytest.fixture
async def provider(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    async with adapter_on(AnthropicProvider, fake_anthropic) as adapter:
        yield adapter


async def test_chat_speaks_the_messages_api(provider: AnthropicProvider, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(echo=True, input_tokens=40, cached_input_tokens=30, output_tokens=6))
    request = ChatRequest(
        model=MODEL,
        messages=[Message(role="system", content="be terse"), Message(role="user", content="echo me")],
        temperature=0.2,
        stop=["END"],
    )
    resp = await provider.chat(request)
    assert resp.message.text == "echo me" and resp.provider == "anthropic" and resp.finish_reason == "stop"
    assert resp.usage.input_tokens == 40 and resp.usage.cached_input_tokens == 30 and resp.usage.output_tokens == 6
    seen = fake_anthropic.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == fake_anthropic.api_key
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body["system"] == "be terse" and seen.body["stop_sequences"] == ["END"]
    assert seen.body["max_tokens"] == 4096 and "stream" not in seen.body


async def test_stream_folds_to_the_non_streamed_answer(provider: AnthropicProvider, fake_anthropic: FakeAnthropic) -> None:
    reply = Reply(text="a longer streamed answer", thinking="first, think", thinking_signature="sig-1",
                  tool_calls=[ToolCallSpec("lookup", {"q": "x", "n": [1, 2]}, id="toolu_fixed")], chunks=5,
                  input_tokens=21, cached_input_tokens=4, output_tokens=13)
    fake_anthropic.enqueue(reply, reply)
    request = ask(reasoning=Reasoning(budget_tokens=2048))
    whole = await provider.chat(request)
    events, folded = await collect(provider, request)
    assert fake_anthropic.requests[-1].body["stream"] is True
    assert fake_anthropic.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert without_ids(folded, tool_call_ids=False) == without_ids(whole, tool_call_ids=False)
    assert folded.message.thinking[0].signature == "sig-1"
    assert folded.usage.input_tokens == 21 and folded.usage.output_tokens == 13


async def test_parallel_tool_calls_are_assembled_from_json_deltas(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic
) -> None:
    calls = [ToolCallSpec("weather", {"city": "Paris", "unit": "c"}), ToolCallSpec("time", {"tz": "Europe/Rome"})]
    fake_anthropic.enqueue(Reply(text=None, tool_calls=calls, chunks=6))
    request = ask("weather?", tools=[ToolSpec(name="weather"), ToolSpec(name="time")], parallel_tool_calls=False,
                  tool_choice="auto")
    events, resp = await collect(provider, request)
    assert sum(isinstance(e, ToolCallDelta) for e in events) >= 6  # arguments really arrived in pieces
    ends = [e.tool_call for e in events if isinstance(e, ToolCallEnd)]
    assert [(c.name, c.arguments) for c in ends] == [("weather", {"city": "Paris", "unit": "c"}),
                                                    ("time", {"tz": "Europe/Rome"})]
    assert resp.finish_reason == "tool_calls" and resp.message.tool_calls == ends
    body = fake_anthropic.requests[-1].body
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


async def test_a_bad_key_is_an_authentication_error(fake_anthropic: FakeAnthropic) -> None:
    async with adapter_on(AnthropicProvider, fake_anthropic, api_key="nope-nope") as bad:
        with pytest.raises(AuthenticationError) as info:
            await bad.chat(ask())
    assert info.value.upstream_status == 401 and info.value.provider == "anthropic"


async def test_missing_key_fails_at_once_naming_the_variable(fake_anthropic: FakeAnthropic) -> None:
    provider = AnthropicProvider(api_key=None, base_url=fake_anthropic.base_url)
    with pytest.raises(ConfigurationError, match="EP_ANTHROPIC_API_KEY"):
        await provider.chat(ask())
    with pytest.raises(ConfigurationError, match="EP_ANTHROPIC_API_KEY"):
        await anext(provider.stream(ask()))
    assert fake_anthropic.requests == []


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        (Fault("status", status=429, retry_after=2), RateLimitError),
        (Fault("status", status=529), OverloadedError),
        (Fault("status", status=500), UpstreamServerError),
        (Fault("status", status=400, error_type="context_length_exceeded"), ContextLengthExceededError),
        (Fault("status", status=404, error_type="not_found_error"), NotFoundError),
        (Fault("status", status=403), PermissionDeniedError),
        (Fault("status", status=401), AuthenticationError),
        (Fault("malformed_json"), UpstreamServerError),
        (Fault("slow_first_byte", delay=1.0), UpstreamTimeoutError),
        (Fault("disconnect"), UpstreamConnectionError),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_faults_map_to_the_taxonomy(
    provider: AnthropicProvider, fake_anthropic: FakeAnthropic, fault: Fault, exc: type[EPError], streaming: bool
) -> None:
    fake_anthropic.enqueue(fault)
    with pytest.raises(exc) as info:
        if streaming:
            await collect(provider, ask())
        else:
            await provider.chat(ask())
    assert info.value.provider == "anthropic"
    if fault.retry_after:
        assert info.value.retry_after == fault.retry_after


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        (Fault("stream_error", after_chunks=4), OverloadedError),
        (Fault("stream_error", after_chunks=4, error_type="rate_limit_error"), RateLimitError),
        (Fault("stall", after_chunks=4, delay=1.0), StreamInterruptedError),
        # bytes already received are discarded when the reset arrives with them, so either error may win
        (Fault("disconnect", after_chunks=4), (StreamInterruptedError, UpstreamConnectionError)),
        (Fault("stall", after_chunks=0, delay=1.0), UpstreamTimeoutError),
    ],
)
async def test_mid_stream_faults(
    provider: AnthropicProvider,
    fake_anthropic: FakeAnthropic,
    fault: Fault,
    exc: type[EPError] | tuple[type[EPError], ...],
) -> None:
    fault.then = Reply(text="some words that stream slowly", chunks=6)
    fake_anthropic.enqueue(fault)
    with pytest.raises(exc) as info:
        await collect(provider, ask())
    assert info.value.retryable


def test_capabilities_by_family() -> None:
    provider = AnthropicProvider(api_key="k")
    haiku3 = provider.capabilities("claude-3-haiku-20240307")
    assert haiku3.max_output_tokens == 4096 and not haiku3.reasoning and haiku3.vision
    assert provider.capabilities("claude-3-5-sonnet-20241022").max_output_tokens == 8192
    assert provider.capabilities("claude-3-7-sonnet-latest").reasoning
    assert provider.capabilities("claude-opus-4-1-20250805").max_output_tokens == 32000
    sonnet45 = provider.capabilities("claude-sonnet-4-5")
    assert sonnet45.max_output_tokens == 64000 and sonnet45.json_schema
    assert sonnet45.json_object  # served by a forced tool call (providers.json_mode)
    assert sonnet45.context_window == 200_000 and sonnet45.tools
    assert provider.capabilities("claude-opus-4-5").max_output_tokens == 64000
    assert provider.url("anything", stream=True) == "https://api.anthropic.com/v1/messages"
