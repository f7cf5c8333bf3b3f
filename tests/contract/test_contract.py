"""One contract, every adapter: each test runs against every target of conftest.TARGETS through its fake.

Tests that need a feature an adapter lacks by design call ``requires`` and are skipped with its reason.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from execution_platform import errors
from execution_platform.model import (
    FinishEvent,
    ImagePart,
    StartEvent,
    TextDelta,
    ToolCallEnd,
    UsageEvent,
)
from tests.fakes.script import Fault, Reply, ToolCallSpec
from tests.streams import collect

from .conftest import Harness, requires

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {
    "name": "get_time",
    "description": "Local time for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")).decode()


async def fold(h: Harness, **fields: object):
    """Stream a request to the adapter: the folded response and the events, in that order."""
    events, response = await collect(h.provider, h.request(**fields))
    return response, events


async def test_plain_text(harness: Harness) -> None:
    harness.fake.enqueue(Reply(text="Hello there, human.", input_tokens=21, output_tokens=5))
    answer = await harness.provider.chat(harness.request())
    assert answer.message.role == "assistant"
    assert answer.message.text == "Hello there, human."
    assert answer.finish_reason == "stop"
    assert answer.usage.input_tokens == 21 and answer.usage.output_tokens == 5
    assert answer.provider == harness.target.provider


async def test_reported_cost_is_the_calls_cost(harness: Harness) -> None:
    """A provider passes on the upstream's own price (Claude Code's total_cost_usd) and invents none."""
    reply = Reply(text="Priced.", input_tokens=1200, output_tokens=300)
    harness.fake.enqueue(reply, reply)
    direct = await harness.provider.chat(harness.request())
    streamed, events = await fold(harness)
    expected = harness.reported_cost(reply)
    assert direct.cost_usd == pytest.approx(expected) and streamed.cost_usd == direct.cost_usd
    assert [e.cost_usd for e in events if isinstance(e, UsageEvent)] == [direct.cost_usd]


async def test_system_prompt_reaches_upstream(harness: Harness) -> None:
    await harness.provider.chat(
        harness.request(messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}])
    )
    sent = harness.upstream_request()
    system = [m for m in sent.messages if m.role in ("system", "developer")]
    assert [m.text for m in system] == ["Be terse."]
    assert sent.messages[-1].role == "user" and sent.messages[-1].text == "Hi"


async def test_multi_turn_history_is_sent_in_order(harness: Harness) -> None:
    requires(harness, "message_history")
    turns = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    harness.fake.enqueue(Reply(echo=True))
    answer = await harness.provider.chat(harness.request(messages=turns))
    assert answer.message.text == "What is my name?"
    sent = harness.upstream_request()
    assert [(m.role, m.text) for m in sent.messages] == [(t["role"], t["content"]) for t in turns]


async def test_image_input(harness: Harness) -> None:
    requires(harness, "vision")
    content = [{"type": "text", "text": "What is this?"}, {"type": "image", "data": PIXEL, "media_type": "image/png"}]
    await harness.provider.chat(harness.request(messages=[{"role": "user", "content": content}]))
    images = [p for p in harness.upstream_request().messages[-1].content if isinstance(p, ImagePart)]
    assert len(images) == 1
    assert images[0].data == PIXEL and images[0].media_type == "image/png"


async def test_tool_call_then_result_then_answer(harness: Harness) -> None:
    requires(harness, "tools")
    harness.fake.enqueue(
        Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    messages: list[dict] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await harness.provider.chat(harness.request(messages=messages, tools=[WEATHER]))
    assert first.finish_reason == "tool_calls"
    [call] = first.message.tool_calls
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"} and call.id
    messages += [
        first.message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "sunny, 24C"},
    ]
    final = await harness.provider.chat(harness.request(messages=messages, tools=[WEATHER]))
    assert final.message.text == "It is sunny in Paris."
    sent = harness.upstream_request()
    [assistant] = [m for m in sent.messages if m.role == "assistant"]
    [result] = [m for m in sent.messages if m.role == "tool"]
    assert assistant.tool_calls[0].name == "get_weather"
    assert result.tool_call_id == assistant.tool_calls[0].id
    assert result.text == "sunny, 24C"
    assert [t.name for t in sent.tools] == ["get_weather"]


async def test_tool_error_result_is_sent(harness: Harness) -> None:
    requires(harness, "tools")
    harness.fake.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Nowhere"})]))
    first = await harness.provider.chat(harness.request(tools=[WEATHER]))
    call = first.message.tool_calls[0]
    messages = [
        {"role": "user", "content": "Hello"},
        first.message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "city not found", "is_error": True},
    ]
    await harness.provider.chat(harness.request(messages=messages, tools=[WEATHER]))
    [result] = [m for m in harness.upstream_request().messages if m.role == "tool"]
    assert "city not found" in result.text


async def test_parallel_tool_calls(harness: Harness) -> None:
    requires(harness, "tools")
    harness.fake.enqueue(
        Reply(
            text=None,
            tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}), ToolCallSpec("get_time", {"city": "Lima"})],
        )
    )
    answer = await harness.provider.chat(harness.request(tools=[WEATHER, TIME]))
    calls = answer.message.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})]
    assert len({c.id for c in calls}) == 2
    assert answer.finish_reason == "tool_calls"


async def test_json_schema_output(harness: Harness) -> None:
    requires(harness, "response_format")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    harness.fake.enqueue(Reply(text='{"n": 3}'))
    answer = await harness.provider.chat(
        harness.request(response_format={"type": "json_schema", "name": "count", "schema": schema})
    )
    assert answer.message.text == '{"n": 3}'
    sent = harness.upstream_request()
    assert sent.response_format is not None and sent.response_format.type == "json_schema"
    assert sent.response_format.json_schema is not None
    assert sent.response_format.json_schema.get("properties", {}).get("n") is not None


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="Streaming is the same as not streaming.", chunks=6, input_tokens=30, output_tokens=9),
        Reply(
            text=None,
            tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}), ToolCallSpec("get_time", {"city": "Kyiv"})],
        ),
        Reply(text="Let me check.", tool_calls=[ToolCallSpec("get_weather", {"city": "Bern"})]),
    ],
    ids=["text", "parallel-tools", "text-and-tool"],
)
async def test_stream_equals_non_stream(harness: Harness, reply: Reply) -> None:
    if reply.tool_calls:
        requires(harness, "tools")
    harness.fake.enqueue(reply, reply)
    fields = {"tools": [WEATHER, TIME]} if harness.target.supports("tools") else {}
    direct = await harness.provider.chat(harness.request(**fields))
    streamed, events = await fold(harness, **fields)
    assert isinstance(events[0], StartEvent)
    assert isinstance(events[-1], FinishEvent) and isinstance(events[-2], UsageEvent)
    assert streamed.message.text == direct.message.text
    assert [(c.name, c.arguments) for c in streamed.message.tool_calls] == [
        (c.name, c.arguments) for c in direct.message.tool_calls
    ]
    assert streamed.finish_reason == direct.finish_reason
    assert streamed.usage == direct.usage
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert len(ends) == len(direct.message.tool_calls)


async def test_usage_always_present_in_streams(harness: Harness) -> None:
    harness.fake.enqueue(Reply(text="abc", input_tokens=11, output_tokens=2))
    answer, events = await fold(harness)
    assert answer.usage.input_tokens == 11 and answer.usage.output_tokens == 2
    assert sum(isinstance(e, UsageEvent) for e in events) == 1
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "abc"


FAULTS = [
    ("bad-request", Fault("status", status=400, message="bad thing"), errors.InvalidRequestError, False),
    ("unauthorized", Fault("status", status=401, message="bad key"), errors.AuthenticationError, False),
    ("forbidden", Fault("status", status=403, message="no"), errors.PermissionDeniedError, False),
    ("not-found", Fault("status", status=404, message="no such model"), errors.NotFoundError, False),
    ("rate-limited", Fault("status", status=429, message="slow down", retry_after=3), errors.RateLimitError, True),
    ("server-error", Fault("status", status=500, message="oops"), errors.UpstreamServerError, True),
    ("unavailable", Fault("status", status=503, message="down"), (errors.UpstreamServerError, errors.OverloadedError), True),
    ("malformed-json", Fault("malformed_json"), errors.UpstreamServerError, True),
]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("fault", "expected", "retryable"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
async def test_fault_maps_to_taxonomy(
    harness: Harness, fault: Fault, expected: type, retryable: bool, stream: bool
) -> None:
    harness.fake.enqueue(fault)
    seen: list[object] = []
    with pytest.raises(expected) as caught:
        if stream:
            async for event in harness.provider.stream(harness.request()):
                seen.append(event)
        else:
            await harness.provider.chat(harness.request())
    # Nothing but the start reached the caller, so routing may still retry or fall back.
    assert all(isinstance(e, StartEvent) for e in seen), f"content streamed before the error: {seen}"
    err = caught.value
    assert err.retryable is retryable
    assert err.provider == harness.target.provider
    if fault.kind == "status":
        assert err.upstream_status == fault.status
    if fault.retry_after is not None and harness.target.supports("retry_after"):
        assert err.retry_after == fault.retry_after


async def test_anthropic_overloaded_529(harness: Harness) -> None:
    requires(harness, "overloaded_529")
    harness.fake.enqueue(Fault("status", status=529, error_type="overloaded_error", message="Overloaded"))
    with pytest.raises(errors.OverloadedError) as caught:
        await harness.provider.chat(harness.request())
    assert caught.value.retryable and caught.value.upstream_status == 529


@pytest.mark.timeouts(read=0.3, stream_idle=5)
@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_slow_first_byte_times_out(harness: Harness, stream: bool) -> None:
    harness.fake.enqueue(Fault("slow_first_byte", delay=1.5))
    with pytest.raises(errors.UpstreamTimeoutError):
        if stream:
            await fold(harness)
        else:
            await harness.provider.chat(harness.request())


@pytest.mark.timeouts(read=5, stream_idle=0.3)
async def test_stalled_stream_times_out(harness: Harness) -> None:
    harness.fake.enqueue(Fault("stall", after_chunks=1, delay=3, then=Reply(text="abcdefgh", chunks=4)))
    with pytest.raises((errors.UpstreamTimeoutError, errors.StreamInterruptedError)) as caught:
        await fold(harness)
    assert caught.value.retryable


async def test_mid_stream_disconnect(harness: Harness) -> None:
    harness.fake.enqueue(Fault("disconnect", after_chunks=2, then=Reply(text="abcdefgh", chunks=4)))
    with pytest.raises((errors.StreamInterruptedError, errors.UpstreamConnectionError)):
        await fold(harness)


async def test_disconnect_without_answer(harness: Harness) -> None:
    harness.fake.enqueue(Fault("disconnect", after_chunks=0))
    with pytest.raises(harness.target.lost_before_output) as caught:
        await harness.provider.chat(harness.request())
    assert caught.value.retryable


@pytest.mark.parametrize("close_after", ["start", "text"])
async def test_cancelling_a_stream_closes_the_upstream_connection(harness: Harness, close_after: str) -> None:
    """Closing the stream lets go of the upstream, right after its start event or once text flows."""
    harness.fake.enqueue(Fault("stall", after_chunks=2, delay=10, then=Reply(text="a" * 40, chunks=20)))
    baseline = harness.upstream_baseline()
    stream = harness.provider.stream(harness.request())
    assert isinstance(await anext(stream), StartEvent)
    if close_after == "text":
        assert isinstance(await anext(stream), TextDelta)
    await asyncio.wait_for(stream.aclose(), 5)  # closing does not wait for the stalled upstream
    assert await harness.upstream_released(baseline), "the upstream stayed open after the consumer stopped"


async def test_task_cancellation_closes_the_upstream_connection(harness: Harness) -> None:
    harness.fake.enqueue(Fault("stall", after_chunks=1, delay=10, then=Reply(text="a" * 40, chunks=20)))
    baseline = harness.upstream_baseline()
    got_first = asyncio.Event()

    async def consume() -> None:
        async for event in harness.provider.stream(harness.request()):
            if isinstance(event, TextDelta):
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await harness.upstream_released(baseline)


async def test_missing_key_fails_at_once_naming_the_variable(harness: Harness) -> None:
    requires(harness, "api_key")
    from execution_platform.providers.registry import provider_class

    provider = provider_class(harness.target.provider)(api_key=None, base_url=harness.fake.base_url)
    before = len(harness.fake.requests)
    with pytest.raises(errors.ConfigurationError, match=f"EP_{harness.target.provider.upper()}_API_KEY"):
        await provider.chat(harness.request())
    assert len(harness.fake.requests) == before


COUNTING_ENDPOINTS = {"anthropic": "/v1/messages/count_tokens", "gemini": ":countTokens"}


async def test_count_tokens(harness: Harness) -> None:
    """The upstream's own count where it has a counting endpoint, an offline count otherwise; never zero,
    and a longer prompt never counts less."""
    before = len(harness.fake.requests)
    short = await harness.provider.count_tokens(harness.request(messages=[{"role": "user", "content": "hi"}]))
    long = await harness.provider.count_tokens(
        harness.request(messages=[{"role": "user", "content": "many words here " * 50}]))
    assert 0 < short < long
    sent = harness.fake.requests[before:]
    endpoint = COUNTING_ENDPOINTS.get(harness.target.provider)
    if endpoint is None:
        assert sent == []  # nothing upstream: no call, no cost
    else:
        assert len(sent) == 2 and all(r.path.endswith(endpoint) for r in sent)
