"""The official ``anthropic`` SDK must parse everything FakeAnthropic sends, exactly as from the real API.

If the fake drifts from the wire format (a missing field, a wrong event name, a wrong error body), the
SDK's own parsing or exception mapping fails here.
"""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest
from pydantic import TypeAdapter

from execution_platform.codecs import anthropic_messages as codec
from execution_platform.codecs.sse import SSEParser
from execution_platform.model import (
    ChatResponse,
    FinishEvent,
    Message,
    StartEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.script import Fault, Reply, ToolCallSpec

MODEL = "claude-sonnet-4-5"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(fake_anthropic: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url, max_retries=0)


@pytest.fixture
def aclient(fake_anthropic: FakeAnthropic) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url, max_retries=0)


def test_text_message(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(text="Bonjour", input_tokens=30, cached_input_tokens=10, output_tokens=4))
    msg = client.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert isinstance(msg, anthropic.types.Message)
    assert msg.model == MODEL and msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Bonjour"
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (20, 10, 4)
    seen = fake_anthropic.requests[-1]
    assert seen.path == "/v1/messages" and seen.body["max_tokens"] == 64


def test_echo_returns_the_last_user_text(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(echo=True))
    msg = client.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": [{"type": "text", "text": "ping?"}]}]
    )
    assert msg.content[0].text == "ping?"


@pytest.mark.parametrize("count", [1, 2])
def test_tool_use(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic, count: int) -> None:
    calls = [ToolCallSpec(name="get_weather", arguments={"city": f"c{i}", "days": i}) for i in range(count)]
    fake_anthropic.enqueue(Reply(text=None, tool_calls=calls))
    msg = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=HI,
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    )
    assert msg.stop_reason == "tool_use"
    uses = [b for b in msg.content if isinstance(b, anthropic.types.ToolUseBlock)]
    assert [(u.name, u.input) for u in uses] == [(c.name, c.arguments) for c in calls]
    assert all(u.id.startswith("toolu_") for u in uses) and len({u.id for u in uses}) == count


def test_thinking_blocks(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(text="42", thinking="step by step", thinking_signature="sig-abc"))
    msg = client.messages.create(
        model=MODEL, max_tokens=2048, messages=HI, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    thinking = msg.content[0]
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert (thinking.thinking, thinking.signature) == ("step by step", "sig-abc")
    assert msg.content[1].text == "42"


def test_stream_helper_and_final_message(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(
        Reply(text="streamed text", thinking="hmm", tool_calls=[ToolCallSpec(name="f", arguments={"a": [1, 2]})],
              chunks=4, output_tokens=11)
    )
    with client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        kinds = [event.type for event in stream]
        text = "".join(stream.text_stream)  # already drained: must not raise
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "input_json" in kinds and "signature" in kinds
    assert text == ""
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[1].text == "streamed text"
    assert final.content[2].input == {"a": [1, 2]}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 11 and final.usage.input_tokens == 12


def test_raw_stream_events(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(text="abc", chunks=3))
    events = list(client.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True))
    assert [e.type for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "abc"


def test_count_tokens(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    small = client.messages.count_tokens(model=MODEL, messages=HI)
    big = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "word " * 200}])
    assert 0 < small.input_tokens < big.input_tokens
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"


def test_beta_query_is_accepted(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    # Older SDKs and CLIs add ``?beta=true`` to beta calls; the route must still match.
    msg = client.beta.messages.create(model=MODEL, max_tokens=10, messages=HI, extra_query={"beta": "true"})
    assert msg.content[0].text
    assert fake_anthropic.requests[-1].query == {"beta": "true"}


def test_bad_key_is_an_authentication_error(fake_anthropic: FakeAnthropic) -> None:
    bad = anthropic.Anthropic(api_key="wrong", base_url=fake_anthropic.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert info.value.status_code == 401
    assert info.value.body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("fault", "exc", "status"),
    [
        (Fault("status", status=429, retry_after=3), anthropic.RateLimitError, 429),
        (Fault("status", status=500), anthropic.InternalServerError, 500),
        (Fault("status", status=529), getattr(anthropic, "OverloadedError", anthropic.InternalServerError), 529),
        (Fault("status", status=404, error_type="not_found_error"), anthropic.NotFoundError, 404),
        (Fault("status", status=400, error_type="context_length_exceeded"), anthropic.BadRequestError, 400),
    ],
)
def test_status_faults_map_to_sdk_exceptions(
    client: anthropic.Anthropic, fake_anthropic: FakeAnthropic, fault: Fault, exc: type[Exception], status: int
) -> None:
    fake_anthropic.enqueue(fault)
    with pytest.raises(exc) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=HI)
    err = info.value
    assert isinstance(err, anthropic.APIStatusError) and err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"]
    if status == 429:
        assert err.response.headers["retry-after"] == "3"
    if status == 400:
        assert "prompt is too long" in err.body["error"]["message"]


def test_in_stream_error_event_raises(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Fault("stream_error", after_chunks=4, message="Overloaded"))
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
            for _ in stream:
                pass
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_malformed_json_is_not_silently_accepted(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Fault("malformed_json"))
    with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK's body parsing
        client.messages.create(model=MODEL, max_tokens=10, messages=HI)


async def test_async_client_message_and_stream(aclient: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(text="async hi"), Reply(text="async stream", tool_calls=[ToolCallSpec("g", {"k": 1})]))
    msg = await aclient.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert msg.content[0].text == "async hi"
    async with aclient.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "async stream"
    assert final.content[-1].input == {"k": 1} and final.stop_reason == "tool_use"


async def test_async_overloaded(aclient: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Fault("status", status=529))
    with pytest.raises(anthropic.InternalServerError) as info:
        await aclient.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"


# ---------------------------------------------------------------------------------------------
# The codec's served side (what the gateway's /v1/messages sends) must validate as SDK types too.
# ---------------------------------------------------------------------------------------------
def _served_response() -> ChatResponse:
    return ChatResponse(
        id="msg_served",
        model=MODEL,
        message=Message(
            role="assistant",
            content=[ThinkingPart(text="hm", signature="sig"), ThinkingPart(redacted=True, data="opaque"),
                     TextPart(text="Hello")],
            tool_calls=[ToolCall(id="toolu_1", name="f", arguments={"a": 1})],
        ),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=100, output_tokens=20, cached_input_tokens=60, cache_write_tokens=10),
    )


def test_encoded_response_is_a_valid_sdk_message() -> None:
    msg = anthropic.types.Message.model_validate(codec.encode_response(_served_response()))
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert msg.stop_reason == "tool_use"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        30, 60, 10,
    )


def test_encoded_stream_events_are_valid_sdk_events() -> None:
    resp = _served_response()
    encoder = codec.StreamEncoder(MODEL)
    raw = encoder.encode(StartEvent(id=resp.id, model=MODEL))
    raw += encoder.encode(ThinkingDelta(text="hm")) + encoder.encode(ThinkingDelta(signature="sig"))
    raw += encoder.encode(ThinkingDelta(redacted=True, data="opaque")) + encoder.encode(TextDelta(text="Hello"))
    raw += encoder.encode(ToolCallStart(index=0, id="toolu_1", name="f"))
    raw += encoder.encode(ToolCallDelta(index=0, arguments='{"a": 1}'))
    raw += encoder.encode(ToolCallEnd(index=0, tool_call=resp.message.tool_calls[0]))
    raw += encoder.encode(UsageEvent(usage=resp.usage)) + encoder.encode(FinishEvent(reason="tool_calls"))
    raw += encoder.finish()
    adapter: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)
    events = [adapter.validate_python(orjson.loads(e.data)) for e in SSEParser().feed(raw) if e.event != "ping"]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "tool_use"
    assert delta.usage.output_tokens == 20 and delta.usage.cache_read_input_tokens == 60


def test_cache_control_breakpoints_write_then_read_the_prompt_cache(client: anthropic.Anthropic) -> None:
    """The SDK parses the fake's cache counters, streamed or not; unmarked requests cache nothing."""
    system = [{"type": "text", "text": "Rules. " * 40, "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    sdk = client
    first = sdk.messages.create(model=MODEL, max_tokens=50, system=system, messages=HI)
    with sdk.messages.stream(model=MODEL, max_tokens=50, system=system, messages=HI) as stream:
        second = stream.get_final_message()
    plain = sdk.messages.create(model=MODEL, max_tokens=50, system="Rules. " * 40, messages=HI)
    # ~4 bytes of JSON per token, up to and including the marked block
    assert first.usage.cache_creation_input_tokens == len(orjson.dumps({"type": "text", "text": "Rules. " * 40})) // 4
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert (plain.usage.cache_read_input_tokens, plain.usage.cache_creation_input_tokens) == (0, 0)
