"""Anthropic Messages codec: round-trip properties in every direction plus the wire's known quirks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution_platform.codecs import anthropic_messages as codec
from execution_platform.codecs.sse import SSEEvent, SSEParser
from execution_platform.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    UnsupportedParameterError,
    UpstreamServerError,
)
from execution_platform.model import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    ErrorEvent,
    FinishEvent,
    ImagePart,
    Message,
    NamedToolChoice,
    Passthrough,
    Reasoning,
    ResponseFormat,
    StartEvent,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from tests.streams import decode_sse, fold

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
text = st.text(max_size=12)
name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
json_scalar = st.none() | st.booleans() | st.integers(-1000, 1000) | text
json_args = st.dictionaries(name, json_scalar | st.lists(st.integers(0, 9), max_size=3), max_size=3)
signature = st.from_regex(r"[A-Za-z0-9+/]{4,16}", fullmatch=True)

# Prompt-cache breakpoints (mostly absent, as on the wire): every place Anthropic accepts one.
cache = st.none() | st.none() | st.builds(CacheControl, ttl=st.none() | st.sampled_from(["5m", "1h"]))
text_part = st.builds(TextPart, text=text, cache_control=cache)
image_part = st.one_of(
    st.builds(ImagePart, data=signature, media_type=st.sampled_from(["image/png", "image/jpeg"]),
              cache_control=cache),
    st.builds(ImagePart, url=st.from_regex(r"https://img\.example/[a-z]{1,6}\.png", fullmatch=True),
              cache_control=cache),
)
thinking_part = st.builds(ThinkingPart, text=text, signature=st.none() | signature)
redacted_part = st.builds(ThinkingPart, redacted=st.just(True), data=signature)


@st.composite
def tool_calls(draw: st.DrawFn, max_size: int = 2, marks: bool = True) -> list[ToolCall]:
    count = draw(st.integers(0, max_size))
    return [
        ToolCall(id=f"toolu_call{draw(st.integers(0, 10**6))}_{i}", name=draw(name), arguments=draw(json_args),
                 cache_control=draw(cache) if marks else None)
        for i in range(count)
    ]


@st.composite
def conversation(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(role="system", content=draw(st.lists(text_part, min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["user", "assistant", "tool"]))
        if kind == "user":
            parts = draw(st.lists(text_part | image_part, min_size=1, max_size=3))
            messages.append(Message(role="user", content=parts))
        elif kind == "assistant":
            parts = draw(st.lists(thinking_part | redacted_part | text_part, max_size=3))
            messages.append(Message(role="assistant", content=parts, tool_calls=draw(tool_calls())))
        else:
            for _ in range(draw(st.integers(1, 3))):
                messages.append(
                    Message(
                        role="tool",
                        # result ids never match a call id above, so decoding cannot add a tool name
                        tool_call_id=f"toolu_result{draw(st.integers(0, 99))}",
                        content=draw(st.lists(text_part | image_part, max_size=2)),
                        is_error=draw(st.booleans()),
                        cache_control=draw(cache),
                    )
                )
    return messages


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    tools = draw(
        st.lists(
            st.builds(
                ToolSpec,
                name=name,
                description=st.none() | text,
                parameters=st.builds(
                    lambda props: {"type": "object", "properties": {k: {"type": "string"} for k in props}},
                    st.lists(name, max_size=2),
                ),
                strict=st.none() | st.booleans(),
                cache_control=cache,
            ),
            max_size=2,
        )
    )
    choice = draw(st.none() | st.sampled_from(["auto", "none", "required"]) | st.builds(NamedToolChoice, name=name))
    # Anthropic carries parallelism inside tool_choice; "none" has no such flag.
    parallel = None if choice in (None, "none") else draw(st.none() | st.booleans())
    effort = st.none() | st.sampled_from(["low", "medium", "high"])
    reasoning = draw(
        st.none()
        | st.builds(Reasoning, budget_tokens=st.integers(1024, 32000), effort=effort)
        | st.builds(Reasoning, effort=st.sampled_from(["low", "medium", "high"]))
    )
    fmt = draw(st.none() | st.builds(lambda s: ResponseFormat(type="json_schema", schema=s), json_args))
    return ChatRequest(
        model=draw(st.sampled_from(["claude-sonnet-4-5", "claude-3-5-haiku-latest", "claude-opus-4-1"])),
        messages=draw(conversation()),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        response_format=fmt,
        temperature=draw(st.none() | st.floats(0, 1, allow_nan=False)),
        top_p=draw(st.none() | st.floats(0, 1, allow_nan=False)),
        max_tokens=draw(st.integers(1, 64000)),
        stop=draw(st.none() | st.lists(text, min_size=1, max_size=3)),
        user=draw(st.none() | name),
        reasoning=reasoning,
        top_k=draw(st.none() | st.integers(1, 500)),
        passthrough=draw(
            st.none() | st.just(Passthrough(format="anthropic", fields={"service_tier": "auto"}))
        ),
    )


_STOPS = ["end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal", "pause_turn"]


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    raw_parts = draw(st.lists(st.builds(TextPart, text=st.text(min_size=1, max_size=20))
                              | st.builds(ThinkingPart, text=text, signature=signature)
                              | redacted_part, max_size=4))
    parts: list[Any] = []
    for part in raw_parts:  # a stream cannot tell two adjacent text blocks apart; the wire merges them too
        if isinstance(part, TextPart) and parts and isinstance(parts[-1], TextPart):
            parts[-1] = TextPart(text=parts[-1].text + part.text)
        else:
            parts.append(part)
    raw = draw(st.sampled_from(_STOPS))
    read, write, plain = draw(st.integers(0, 5000)), draw(st.integers(0, 5000)), draw(st.integers(0, 5000))
    output = draw(st.integers(0, 5000))
    return ChatResponse(
        id="msg_" + draw(signature),
        model=draw(st.sampled_from(["claude-sonnet-4-5-20250929", "claude-haiku-4-5"])),
        message=Message(role="assistant", content=parts, tool_calls=draw(tool_calls(max_size=3, marks=False))),
        finish_reason=codec.finish_reason(raw),
        raw_finish_reason=raw,
        stop_sequence=draw(text) if raw == "stop_sequence" else None,
        usage=Usage(
            input_tokens=plain + read + write,
            output_tokens=output,
            cached_input_tokens=read,
            cache_write_tokens=write,
            cache_write_1h_tokens=draw(st.integers(0, write)),
            reasoning_tokens=draw(st.integers(0, output)),
        ),
    )


def events_of(resp: ChatResponse, chunk: int) -> list[StreamEvent]:
    """The canonical stream a provider would produce for ``resp``, text split every ``chunk`` chars."""
    events: list[StreamEvent] = [StartEvent(id=resp.id, model=resp.model)]
    for part in resp.message.content:
        if isinstance(part, TextPart):
            events += [TextDelta(text=part.text[i : i + chunk]) for i in range(0, len(part.text), chunk)]
        elif isinstance(part, ThinkingPart) and part.redacted:
            events.append(ThinkingDelta(redacted=True, data=part.data))
        elif isinstance(part, ThinkingPart):
            events += [ThinkingDelta(text=part.text[i : i + chunk]) for i in range(0, len(part.text), chunk)]
            events.append(ThinkingDelta(signature=part.signature))
    for i, call in enumerate(resp.message.tool_calls):
        raw = orjson.dumps(call.arguments).decode()
        events.append(ToolCallStart(index=i, id=call.id, name=call.name))
        events += [ToolCallDelta(index=i, arguments=raw[j : j + chunk]) for j in range(0, len(raw), chunk)]
        events.append(ToolCallEnd(index=i, tool_call=call))
    events.append(UsageEvent(usage=resp.usage))
    events.append(FinishEvent(reason=resp.finish_reason, raw_reason=resp.raw_finish_reason,
                              stop_sequence=resp.stop_sequence))
    return events


def wire_stream(events: list[StreamEvent], model: str = "m") -> bytes:
    encoder = codec.StreamEncoder(model)
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def decode_stream(raw: bytes, split: int = 7, model: str = "m") -> list[StreamEvent]:
    return decode_sse(raw, codec.StreamDecoder(model), split)


def sse_names(raw: bytes) -> list[str | None]:
    return [e.event for e in SSEParser().feed(raw)]


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------
@PROPERTY
@given(requests())
def test_request_round_trip(req: ChatRequest) -> None:
    wire = codec.encode_request(req)
    assert orjson.loads(orjson.dumps(wire)) == wire  # plain JSON
    assert codec.decode_request(wire) == req


@PROPERTY
@given(requests())
def test_wire_request_is_stable(req: ChatRequest) -> None:
    wire = codec.encode_request(req, stream=True)
    assert wire["stream"] is True
    assert codec.encode_request(codec.decode_request(wire), stream=True) == wire


@PROPERTY
@given(responses())
def test_response_round_trip(resp: ChatResponse) -> None:
    wire = codec.encode_response(resp)
    assert codec.decode_response(orjson.loads(orjson.dumps(wire))) == resp


@PROPERTY
@given(responses(), st.integers(1, 6), st.integers(1, 40))
def test_stream_round_trip_folds_to_the_response(resp: ChatResponse, chunk: int, split: int) -> None:
    raw = wire_stream(events_of(resp, chunk), model=resp.model)
    events = decode_stream(raw, split=split)
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert fold(events) == resp
    assert fold(events) == codec.decode_response(codec.encode_response(resp))


# ---------------------------------------------------------------------------------------------
# requests: quirks
# ---------------------------------------------------------------------------------------------
def test_consecutive_tool_results_share_one_user_message_and_split_back() -> None:
    req = ChatRequest(
        model="claude-sonnet-4-5",
        messages=[
            Message(role="system", content="be brief"),
            Message(role="developer", content="really"),
            Message(role="user", content="weather in Paris and Rome?"),
            Message(role="assistant", tool_calls=[ToolCall(id="t1", name="w", arguments={"c": "Paris"}),
                                                  ToolCall(id="t2", name="w", arguments={"c": "Rome"})]),
            Message(role="tool", tool_call_id="t1", content="sunny"),
            Message(role="tool", tool_call_id="t2", content="rain", is_error=True),
        ],
    )
    wire = codec.encode_request(req)
    assert wire["system"] == [{"type": "text", "text": "be brief"}, {"type": "text", "text": "really"}]
    assert [m["role"] for m in wire["messages"]] == ["user", "assistant", "user"]
    assert wire["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "rain", "is_error": True},
    ]
    back = codec.decode_request(wire)
    tools = [m for m in back.messages if m.role == "tool"]
    assert [(m.tool_call_id, m.name, m.text, m.is_error) for m in tools] == [
        ("t1", "w", "sunny", False),
        ("t2", "w", "rain", True),
    ]


def test_user_turn_mixing_results_and_text_is_split_in_order() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "system": "sys",
        "messages": [
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "r1"}]},
                {"type": "text", "text": "and now?", "cache_control": {"type": "ephemeral"}},
            ]},
        ],
    }
    req = codec.decode_request(body)
    assert [(m.role, m.text) for m in req.messages] == [("system", "sys"), ("tool", "r1"), ("user", "and now?")]


def test_max_tokens_defaults_and_leaves_room_for_thinking() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content="hi")])
    assert codec.encode_request(req)["max_tokens"] == codec.DEFAULT_MAX_TOKENS
    thinking = req.model_copy(update={"reasoning": Reasoning(budget_tokens=10000)})
    wire = codec.encode_request(thinking)
    assert wire["thinking"] == {"type": "enabled", "budget_tokens": 10000}
    assert wire["max_tokens"] > 10000


def test_sampling_tools_and_structured_output_on_the_wire() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content="hi")],
        tools=[ToolSpec(name="f", parameters={"type": "object", "properties": {"x": {"type": "integer"}}})],
        tool_choice="required",
        parallel_tool_calls=False,
        stop="END",
        user="u-1",
        temperature=0.3,
        response_format=ResponseFormat(type="json_schema", name="out", schema={"type": "object"}),
        reasoning=Reasoning(effort="minimal"),
        seed=7,
    )
    wire = codec.encode_request(req)
    assert wire["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}}]
    assert wire["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert wire["stop_sequences"] == ["END"]
    assert wire["metadata"] == {"user_id": "u-1"}
    assert wire["output_config"] == {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert "seed" not in wire  # Anthropic rejects unknown fields; seed is only a hint elsewhere
    only_parallel = req.model_copy(update={"tool_choice": None})
    assert codec.encode_request(only_parallel)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_json_mode_without_schema_is_refused_not_dropped() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content="hi")],
                      response_format=ResponseFormat(type="json_object"))
    with pytest.raises(UnsupportedParameterError) as info:
        codec.encode_request(req)
    assert info.value.param == "response_format"


def test_data_url_images_become_base64_sources() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content=[ImagePart(url="data:image/png;base64,AAAA")])])
    block = codec.encode_request(req)["messages"][0]["content"][0]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}


def test_unknown_parameters_pass_through_both_ways() -> None:
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    body = {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "top_k": 5,
        "thinking": {"type": "adaptive"},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, server_tool],
        "metadata": {"user_id": "u", "trace": "x"},
        "stream": True,
    }
    req = codec.decode_request(body)
    assert req.user == "u" and [t.name for t in req.tools] == ["f"]
    assert req.top_k == 5 and req.provider_options == {}
    assert req.passthrough == Passthrough(
        format="anthropic", fields={"thinking": {"type": "adaptive"}, "metadata": {"trace": "x"}}, tools=[server_tool]
    )
    again = codec.encode_request(req, stream=True)
    assert again == body


def test_system_turns_inside_messages_join_the_system_prompt() -> None:
    """Recent Claude Code sends ``role: "system"`` turns among the messages; they become system messages."""
    body = {
        "model": "m",
        "system": "top",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "ctx a"}, {"type": "text", "text": "ctx b"}]},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "late"},
            {"role": "user", "content": "and?"},
        ],
    }
    req = codec.decode_request(body)
    assert [(m.role, m.text) for m in req.messages] == [
        ("system", "top"), ("system", "ctx a\n\nctx b"), ("system", "late"),
        ("user", "hi"), ("assistant", "hello"), ("user", "and?"),
    ]
    wire = codec.encode_request(req)
    assert [m["role"] for m in wire["messages"]] == ["user", "assistant", "user"]
    assert wire["system"] == [{"type": "text", "text": t} for t in ("top", "ctx a\n\nctx b", "late")]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "messages": [{"role": "system", "content": [{"type": "image"}]}]}, "messages.0.content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages.0.content.0.type"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        ({"model": "m", "messages": [], "system": 5}, "system"),
        ({"model": "m", "messages": [], "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        codec.decode_request(body)
    assert info.value.param == param


# ---------------------------------------------------------------------------------------------
# responses: quirks
# ---------------------------------------------------------------------------------------------
def _message(**over: Any) -> dict[str, Any]:
    body = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 300,
                  "output_tokens": 5},
    }
    body.update(over)
    return body


_EPHEMERAL = {"type": "ephemeral"}


def test_cache_breakpoints_survive_every_place_anthropic_accepts_them() -> None:
    """System, text, image, tool_use, tool_result and tool breakpoints decode and re-encode verbatim."""
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "tools": [{"name": "look", "input_schema": {"type": "object", "properties": {}},
                   "cache_control": _EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://img.example/a.png"},
                 "cache_control": _EPHEMERAL},
                {"type": "text", "text": "what is it?", "cache_control": _EPHEMERAL},
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}, "cache_control": _EPHEMERAL},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat", "cache_control": _EPHEMERAL},
            ]},
            {"role": "user", "content": [{"type": "text", "text": "thanks", "cache_control": _EPHEMERAL}]},
        ],
    }
    req = codec.decode_request(body)
    assert req.messages[0].content[0].cache_control == CacheControl(ttl="1h")
    assert req.tools[0].cache_control == CacheControl()
    assert [p.cache_control for p in req.messages[1].content] == [CacheControl(), CacheControl()]
    assert req.messages[2].tool_calls[0].cache_control == CacheControl()
    assert req.messages[3].role == "tool" and req.messages[3].cache_control == CacheControl()
    assert codec.encode_request(req) == body


def test_a_marked_lone_system_or_user_text_is_sent_as_a_block() -> None:
    mark = CacheControl()
    req = ChatRequest(model="claude-sonnet-4-5", messages=[
        Message(role="system", content=[TextPart(text="rules", cache_control=mark)]),
        Message(role="user", content=[TextPart(text="hi", cache_control=mark)]),
        Message(role="user", content="plain"),
    ])
    wire = codec.encode_request(req)
    assert wire["system"] == [{"type": "text", "text": "rules", "cache_control": _EPHEMERAL}]
    assert wire["messages"][0]["content"] == [{"type": "text", "text": "hi", "cache_control": _EPHEMERAL}]
    assert wire["messages"][1]["content"] == "plain"


@pytest.mark.parametrize("bad", [{"type": "persistent"}, "ephemeral", {"type": "ephemeral", "ttl": 5}])
def test_a_malformed_cache_control_is_refused_with_its_place(bad: Any) -> None:
    body = {"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": bad}]}]}
    with pytest.raises(InvalidRequestError) as info:
        codec.decode_request(body)
    assert info.value.param == "messages.0.content.0.cache_control"


def test_one_hour_cache_writes_are_read_and_written_back() -> None:
    wire = {"input_tokens": 5, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 0, "output_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}}
    usage = codec.decode_usage(wire)
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (35, 30, 20)
    assert codec.encode_usage(usage) == wire


def test_input_tokens_include_cache_reads_and_writes() -> None:
    usage = codec.decode_response(_message()).usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (330, 300, 20)
    assert codec.encode_response(codec.decode_response(_message()))["usage"] == _message()["usage"]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
     (None, "stop")],
)
def test_stop_reasons(stop: str | None, finish: str) -> None:
    resp = codec.decode_response(_message(stop_reason=stop, stop_sequence="###" if stop == "stop_sequence" else None))
    assert resp.finish_reason == finish
    assert resp.raw_finish_reason == stop
    if stop == "stop_sequence":
        assert resp.stop_sequence == "###"


def test_foreign_finish_reasons_get_an_anthropic_stop_reason() -> None:
    resp = ChatResponse(id="x", model="m", message=Message(role="assistant", content="a"), finish_reason="length",
                        raw_finish_reason="length")  # e.g. from OpenAI
    assert codec.encode_response(resp)["stop_reason"] == "max_tokens"
    stop = resp.model_copy(update={"finish_reason": "stop", "raw_finish_reason": "STOP", "stop_sequence": "Z"})
    wire = codec.encode_response(stop)
    assert (wire["stop_reason"], wire["stop_sequence"]) == ("stop_sequence", "Z")


# ---------------------------------------------------------------------------------------------
# streams: quirks
# ---------------------------------------------------------------------------------------------
REAL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_9","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":1}}}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"San Fra"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""


def test_decodes_a_recorded_tool_use_stream() -> None:
    events = decode_stream(REAL_STREAM, split=13)
    assert [e.type for e in events] == [
        "start", "text_delta", "tool_call_start", "tool_call_delta", "tool_call_delta", "tool_call_end", "usage",
        "finish",
    ]
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.tool_call == ToolCall(id="toolu_1", name="get_weather", arguments={"location": "San Francisco"})
    resp = fold(events)
    assert resp.usage == Usage(input_tokens=125, output_tokens=89, cached_input_tokens=100)
    assert resp.finish_reason == "tool_calls" and resp.raw_finish_reason == "tool_use"


def test_no_finish_without_message_stop() -> None:
    cut = REAL_STREAM[: REAL_STREAM.index(b"event: message_stop")]
    assert not any(isinstance(e, FinishEvent) for e in decode_stream(cut))


@pytest.mark.parametrize(
    ("kind", "exc"),
    [("overloaded_error", OverloadedError), ("rate_limit_error", RateLimitError), ("api_error", UpstreamServerError),
     ("invalid_request_error", InvalidRequestError)],
)
def test_in_stream_error_events_raise(kind: str, exc: type[Exception]) -> None:
    decoder = codec.StreamDecoder("m")
    decoder.feed(SSEEvent(event="message_start", data='{"type":"message_start","message":{"id":"a","model":"m"}}'))
    data = orjson.dumps({"type": "error", "error": {"type": kind, "message": "Overloaded"}}).decode()
    with pytest.raises(exc):
        decoder.feed(SSEEvent(event="error", data=data))


def test_encoder_emits_the_real_event_sequence() -> None:
    call = ToolCall(id="toolu_x", name="f", arguments={"a": 1})
    raw = wire_stream([
        StartEvent(id="msg_1", model="claude"),
        ThinkingDelta(text="hm"), ThinkingDelta(signature="sig"),
        TextDelta(text="Hi"), TextDelta(text="!"),
        ToolCallStart(index=0, id="toolu_x", name="f"), ToolCallDelta(index=0, arguments='{"a": 1}'),
        ToolCallEnd(index=0, tool_call=call),
        UsageEvent(usage=Usage(input_tokens=50, output_tokens=9, cached_input_tokens=40)),
        FinishEvent(reason="tool_calls"),
    ])
    assert sse_names(raw) == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    frames = [orjson.loads(e.data) for e in SSEParser().feed(raw)]
    assert [f["index"] for f in frames if f["type"] == "content_block_start"] == [0, 1, 2]
    assert frames[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert frames[-2]["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 40,
                                   "output_tokens": 9}
    assert frames[0]["message"]["usage"]["output_tokens"] == 0


def test_interleaved_parallel_tool_deltas_become_sequential_blocks() -> None:
    a = ToolCall(id="c0", name="a", arguments={"x": 1})
    b = ToolCall(id="c1", name="b", arguments={"y": 2})
    raw = wire_stream([
        StartEvent(id="r", model="m"),
        ToolCallStart(index=0, id="c0", name="a"), ToolCallStart(index=1, id="c1", name="b"),
        ToolCallDelta(index=1, arguments='{"y"'), ToolCallDelta(index=0, arguments='{"x": 1}'),
        ToolCallDelta(index=1, arguments=": 2}"),
        ToolCallEnd(index=0, tool_call=a), ToolCallEnd(index=1, tool_call=b),
        UsageEvent(usage=Usage()), FinishEvent(reason="tool_calls"),
    ])
    frames = [orjson.loads(e.data) for e in SSEParser().feed(raw)]
    opened: list[int] = []
    for f in frames:  # a block never receives deltas after another block started
        if f["type"] == "content_block_start":
            opened.append(f["index"])
        elif f["type"] == "content_block_delta":
            assert f["index"] == opened[-1]
    assert fold(decode_stream(raw)).message.tool_calls == [a, b]


def test_complete_tool_calls_without_deltas_still_carry_their_input() -> None:
    call = ToolCall(id="c", name="f", arguments={"q": "x"})
    raw = wire_stream([StartEvent(id="r", model="m"), ToolCallEnd(index=0, tool_call=call),
                       UsageEvent(usage=Usage()), FinishEvent(reason="tool_calls")])
    assert fold(decode_stream(raw)).message.tool_calls == [call]


def test_error_event_is_encoded_as_anthropic_error() -> None:
    raw = wire_stream([StartEvent(id="r", model="m"), TextDelta(text="a"),
                       ErrorEvent(error_type="overloaded_error", message="busy")])
    last = SSEParser().feed(raw)[-1]
    assert last.event == "error"
    assert orjson.loads(last.data) == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    with pytest.raises(OverloadedError):
        decode_stream(raw)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def _err(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "kind", "message", "exc"),
    [
        (529, "overloaded_error", "Overloaded", OverloadedError),
        (429, "rate_limit_error", "slow down", RateLimitError),
        (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", ContextLengthExceededError),
        (400, "invalid_request_error", "max_tokens: Field required", InvalidRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (403, "permission_error", "no", PermissionDeniedError),
        (404, "not_found_error", "model: claude-9", NotFoundError),
        (500, "api_error", "Internal server error", UpstreamServerError),
    ],
)
def test_decode_error(status: int, kind: str, message: str, exc: type[Exception]) -> None:
    err = codec.decode_error(status, _err(kind, message), {"retry-after": "7"})
    assert type(err) is exc
    assert err.message == message and err.upstream_status == status and err.retry_after == 7.0


def test_credit_balance_too_low_is_an_exhausted_quota() -> None:
    """Anthropic has no billing 429: an empty prepaid balance is a 400 that must not look like a bad request."""
    err = codec.decode_error(400, _err("invalid_request_error", "Your credit balance is too low to access the "
                                       "Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."), {})
    assert type(err) is QuotaExceededError and not err.retryable and err.upstream_status == 400
    assert codec.encode_error(err)[0] == 429


def test_decode_error_survives_non_json_bodies() -> None:
    err = codec.decode_error(502, b"<html>Bad Gateway</html>", {})
    assert isinstance(err, UpstreamServerError) and "Bad Gateway" in err.message


@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (OverloadedError("busy"), 529, "overloaded_error"),
        (RateLimitError("slow"), 429, "rate_limit_error"),
        (ContextLengthExceededError("prompt is too long: 300000 tokens > 200000 maximum"), 400, "invalid_request_error"),
        (AuthenticationError("who"), 401, "authentication_error"),
        (PermissionDeniedError("no"), 403, "permission_error"),
        (NotFoundError("gone"), 404, "not_found_error"),
        (UpstreamServerError("boom"), 502, "api_error"),
    ],
)
def test_encode_error(err: Any, status: int, kind: str) -> None:
    code, body = codec.encode_error(err)
    assert (code, body) == (status, {"type": "error", "error": {"type": kind, "message": err.message}})
    assert type(codec.decode_error(code, orjson.dumps(body), {})) is type(err)  # the gateway's answer reads back
