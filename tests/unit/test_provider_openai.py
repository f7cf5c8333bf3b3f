"""The OpenAI adapter against the fake OpenAI server: answers, streams, tool calls and every failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from execution_platform import errors
from execution_platform.model import (
    ChatRequest,
    FinishEvent,
    StartEvent,
    StreamEvent,
    TextDelta,
    ToolCallEnd,
    UsageEvent,
)
from execution_platform.providers.http import HttpClient, Timeouts
from execution_platform.providers.openai import OpenAIProvider
from tests.fakes.openai import FakeOpenAI
from tests.fakes.script import Fault, Reply, ToolCallSpec
from tests.streams import collect

QUICK = Timeouts(connect=2, read=5, total=20, stream_idle=5)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.aclose()


def make(fake: FakeOpenAI, http: HttpClient, timeouts: Timeouts = QUICK, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider(api_key=kw.pop("api_key", fake.api_key), base_url=fake.base_url, timeouts=timeouts,
                          http=http, **kw)


def req(text: str = "Hello", **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}],
                                       **fields})


async def test_chat_text_usage_and_auth_header(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Reply(text="Hi there.", input_tokens=30, output_tokens=4, cached_input_tokens=16,
                              reasoning_tokens=2))
    answer = await make(fake_openai, http).chat(req(temperature=0.1, max_tokens=50))
    assert answer.message.text == "Hi there." and answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (30, 4)
    assert (answer.usage.cached_input_tokens, answer.usage.reasoning_tokens) == (16, 2)
    assert answer.provider == "openai" and answer.model == "gpt-4o-mini"
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer test-key"
    assert sent.body["temperature"] == 0.1 and sent.body["max_tokens"] == 50 and "stream" not in sent.body


async def test_stream_folds_to_the_non_stream_answer(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    reply = Reply(text="One two three four five.", chunks=5, tool_calls=[ToolCallSpec("f", {"x": [1, 2]}, id="c1")],
                  input_tokens=9, output_tokens=11)
    fake_openai.enqueue(reply, reply)
    provider = make(fake_openai, http)
    plain = await provider.chat(req())
    events, streamed = await collect(provider, req())
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert sum(isinstance(e, TextDelta) for e in events) == 5
    assert streamed.message == plain.message
    assert streamed.usage == plain.usage and streamed.finish_reason == plain.finish_reason == "tool_calls"


async def test_parallel_tool_calls_are_assembled(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    calls = [ToolCallSpec("get_weather", {"city": "Oslo"}), ToolCallSpec("get_time", {"city": "Lima", "tz": True})]
    fake_openai.enqueue(Reply(text=None, tool_calls=calls), Reply(text=None, tool_calls=calls))
    provider = make(fake_openai, http)
    tools = [{"name": "get_weather"}, {"name": "get_time"}]
    answer = await provider.chat(req(tools=tools, tool_choice="required"))
    assert [(c.name, c.arguments) for c in answer.message.tool_calls] == [
        ("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima", "tz": True})]
    assert all(c.id.startswith("call_") for c in answer.message.tool_calls)
    events, _ = await collect(provider, req(tools=tools))
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(e.index, e.tool_call.name, e.tool_call.arguments) for e in ends] == [
        (0, "get_weather", {"city": "Oslo"}), (1, "get_time", {"city": "Lima", "tz": True})]
    assert fake_openai.requests[-2].body["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        (Fault("status", status=429, message="Rate limit reached", retry_after=3), errors.RateLimitError),
        (Fault("status", status=500, message="The server had an error"), errors.UpstreamServerError),
        (Fault("status", status=503, message="The engine is currently overloaded, please try again later"),
         errors.OverloadedError),
        (Fault("status", status=400, message="maximum context length is 128000 tokens",
               error_type="context_length_exceeded"), errors.ContextLengthExceededError),
        (Fault("status", status=404, message="The model does not exist"), errors.NotFoundError),
        (Fault("status", status=403, message="Country not supported"), errors.PermissionDeniedError),
        (Fault("malformed_json"), errors.UpstreamServerError),
    ],
    ids=["429", "500", "503", "context", "404", "403", "malformed"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_faults_map_to_the_taxonomy(
    fake_openai: FakeOpenAI, http: HttpClient, fault: Fault, cls: type[errors.EPError], stream: bool
) -> None:
    fake_openai.enqueue(fault)
    provider = make(fake_openai, http)
    with pytest.raises(errors.EPError) as info:
        await (collect(provider, req()) if stream else provider.chat(req()))
    assert type(info.value) is cls
    assert info.value.provider == "openai"
    if fault.retry_after is not None:
        assert info.value.retry_after == fault.retry_after


async def test_wrong_key_is_an_authentication_error(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        await make(fake_openai, http, api_key="sk-wrong-key-123456789").chat(req())
    assert "Incorrect API key" in info.value.message and "123456789" not in info.value.message


async def test_missing_key_fails_at_once(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    with pytest.raises(errors.ConfigurationError, match="EP_OPENAI_API_KEY"):
        await make(fake_openai, http, api_key=None).chat(req())
    with pytest.raises(errors.ConfigurationError, match="EP_OPENAI_API_KEY"):
        await collect(make(fake_openai, http, api_key=None), req())
    assert fake_openai.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_slow_first_byte_times_out(fake_openai: FakeOpenAI, http: HttpClient, stream: bool) -> None:
    fake_openai.enqueue(Fault("slow_first_byte", delay=1.0))
    provider = make(fake_openai, http, Timeouts(connect=2, read=0.2, total=10, stream_idle=0.2))
    with pytest.raises(errors.UpstreamTimeoutError):
        await (collect(provider, req()) if stream else provider.chat(req()))


async def test_slow_first_byte_within_budget_succeeds(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Fault("slow_first_byte", delay=0.1, then=Reply(text="late")))
    answer = await make(fake_openai, http, Timeouts(read=2)).chat(req())
    assert answer.message.text == "late"


async def test_disconnect_mid_stream_is_interrupted(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Fault("disconnect", after_chunks=2, then=Reply(text="a b c d e f", chunks=6)))
    seen: list[StreamEvent] = []
    with pytest.raises(errors.StreamInterruptedError):
        async for event in make(fake_openai, http).stream(req()):
            seen.append(event)
    assert any(isinstance(e, TextDelta) for e in seen)
    assert not any(isinstance(e, FinishEvent) for e in seen)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_disconnect_before_any_token_is_a_connection_error(
    fake_openai: FakeOpenAI, http: HttpClient, stream: bool
) -> None:
    fake_openai.enqueue(Fault("disconnect", after_chunks=0))
    provider = make(fake_openai, http)
    with pytest.raises(errors.UpstreamConnectionError):
        await (collect(provider, req()) if stream else provider.chat(req()))


async def test_stall_mid_stream_hits_the_idle_timeout(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Fault("stall", after_chunks=2, delay=2.0, then=Reply(text="a b c d", chunks=4)))
    provider = make(fake_openai, http, Timeouts(connect=2, read=2, total=10, stream_idle=0.2))
    started = asyncio.get_running_loop().time()
    with pytest.raises((errors.StreamInterruptedError, errors.UpstreamTimeoutError)):
        await collect(provider, req())
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_stall_in_plain_answer_times_out(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Fault("stall", delay=2.0))
    provider = make(fake_openai, http, Timeouts(connect=2, read=0.2, total=10, stream_idle=0.2))
    with pytest.raises(errors.UpstreamTimeoutError):
        await provider.chat(req())


async def test_in_stream_error_chunk_is_raised(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    fake_openai.enqueue(Fault("stream_error", after_chunks=2, message="The server had an error while processing"))
    with pytest.raises(errors.UpstreamServerError, match="server had an error"):
        await collect(make(fake_openai, http), req())


async def test_any_compatible_base_url(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    provider = OpenAIProvider(api_key=fake_openai.api_key, base_url=fake_openai.base_url + "/", http=http,
                              timeouts=QUICK, name="local-vllm")
    answer = await provider.chat(req())
    assert answer.provider == "local-vllm" and fake_openai.requests[-1].path == "/v1/chat/completions"


def test_default_base_url_and_capabilities() -> None:
    provider = OpenAIProvider(api_key="k")
    assert provider.base_url == "https://api.openai.com/v1"
    assert provider.url("gpt-4o", stream=True) == "https://api.openai.com/v1/chat/completions"
    gpt4o = provider.capabilities("gpt-4o-mini")
    assert gpt4o.vision and gpt4o.json_schema and not gpt4o.reasoning and gpt4o.context_window == 128_000
    assert provider.capabilities("gpt-5-mini").reasoning
    assert provider.capabilities("o3-mini").reasoning and not provider.capabilities("o3-mini").vision
    assert provider.capabilities("gpt-4.1-nano").context_window == 1_047_576
    assert provider.capabilities("gpt-3.5-turbo").max_output_tokens == 4_096
    unknown = provider.capabilities("my-finetune")
    assert unknown.tools and unknown.vision and unknown.context_window is None


async def test_a_key_changed_on_the_provider_is_sent_from_the_next_call(fake_openai: FakeOpenAI, http: HttpClient) -> None:
    provider = make(fake_openai, http)
    assert (await provider.chat(req())).message.text
    provider.api_key = "sk-wrong"
    with pytest.raises(errors.AuthenticationError):
        await provider.chat(req())
    provider.api_key = fake_openai.api_key
    assert (await provider.chat(req())).message.text
