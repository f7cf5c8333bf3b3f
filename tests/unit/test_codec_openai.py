"""The OpenAI chat codec: canonical → wire → canonical keeps everything the format can carry."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution_platform import errors
from execution_platform.codecs import openai_chat as codec
from execution_platform.codecs.sse import SSEEvent, SSEParser
from execution_platform.model import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    FinishEvent,
    ImagePart,
    Message,
    NamedToolChoice,
    Passthrough,
    Reasoning,
    RequestMetadata,
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
from tests.unit.cache_marks import marked

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24)
ident = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False,
                                                                                allow_infinity=False) | text
json_value = st.recursive(
    json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ident, inner, max_size=3), max_leaves=8
)
json_object = st.dictionaries(ident, json_value, max_size=4)


def _not_json_object(value: str) -> bool:
    try:
        return not isinstance(orjson.loads(value), dict)
    except orjson.JSONDecodeError:
        return True


raw_arguments = text.filter(_not_json_object)


@st.composite
def tool_calls(draw: st.DrawFn) -> ToolCall:
    call_id = "call_" + draw(ident)
    if draw(st.booleans()):
        return ToolCall(id=call_id, name=draw(ident), arguments=draw(json_object))
    return ToolCall(id=call_id, name=draw(ident), raw_arguments=draw(raw_arguments))


images = st.builds(
    ImagePart,
    url=st.builds(lambda s: f"https://img.example/{s}.png", ident),
    detail=st.sampled_from([None, "auto", "low", "high"]),
) | st.builds(
    ImagePart,
    data=st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode()),
    media_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
    detail=st.sampled_from([None, "auto", "low", "high"]),
)
text_parts = st.builds(TextPart, text=text)
names = st.none() | ident


@st.composite
def messages(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
    if role in ("system", "developer"):
        return Message(role=role, content=draw(st.lists(text_parts, min_size=1, max_size=3)), name=draw(names))
    if role == "user":
        parts = draw(st.lists(text_parts | images, min_size=1, max_size=3))
        return Message(role=role, content=parts, name=draw(names))
    if role == "assistant":
        return Message(
            role=role,
            content=draw(st.lists(text_parts, max_size=2)),
            tool_calls=draw(st.lists(tool_calls(), max_size=2)),
            name=draw(names),
        )
    # Tool results answer ids that no generated call uses, so no tool name is recovered from history.
    return Message(role="tool", tool_call_id="toolu_" + draw(ident), content=draw(st.lists(text_parts, min_size=1,
                                                                                           max_size=2)))


tool_specs = st.builds(
    ToolSpec,
    name=ident,
    description=st.none() | text,
    parameters=st.builds(lambda props: {"type": "object", "properties": props}, st.dictionaries(
        ident, st.just({"type": "string"}), max_size=3)),
    strict=st.none() | st.booleans(),
)
response_formats = st.none() | st.builds(ResponseFormat, type=st.sampled_from(["text", "json_object"])) | st.builds(
    ResponseFormat,
    type=st.just("json_schema"),
    name=ident,
    schema=st.just({"type": "object", "properties": {"a": {"type": "integer"}}}),
    strict=st.none() | st.booleans(),
    description=st.none() | text,
)
unit = st.floats(0, 2, allow_nan=False)
passthrough = st.dictionaries(ident.map(lambda k: "x_" + k), json_value, min_size=1, max_size=2).map(
    lambda fields: Passthrough(format="openai", fields=fields)
)
penalty = st.floats(-2, 2, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    return ChatRequest(
        model=draw(st.sampled_from(["gpt-4o-mini", "gpt-5", "o3-mini", "llama-3.1-8b"])),
        messages=draw(st.lists(messages(), min_size=1, max_size=5)),
        tools=draw(st.lists(tool_specs, max_size=2)),
        tool_choice=draw(st.none() | st.sampled_from(["auto", "none", "required"]) | st.builds(NamedToolChoice,
                                                                                              name=ident)),
        parallel_tool_calls=draw(st.none() | st.booleans()),
        response_format=draw(response_formats),
        temperature=draw(st.none() | unit),
        top_p=draw(st.none() | st.floats(0, 1, allow_nan=False)),
        frequency_penalty=draw(st.none() | penalty),
        presence_penalty=draw(st.none() | penalty),
        max_tokens=draw(st.none() | st.integers(1, 200_000)),
        stop=draw(st.none() | st.lists(text, min_size=1, max_size=3)),
        seed=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
        user=draw(st.none() | text),
        reasoning=draw(st.none() | st.builds(Reasoning, effort=st.sampled_from(["minimal", "low", "medium", "high"]))),
        prompt_cache_key=draw(st.none() | ident),
        passthrough=draw(st.none() | passthrough),
    )


usages = st.builds(
    Usage,
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**6),
    cached_input_tokens=st.integers(0, 10**6),
    cache_write_tokens=st.integers(0, 10**6),
    reasoning_tokens=st.integers(0, 10**6),
)


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    parts: list[Any] = []
    if draw(st.booleans()):
        parts.append(ThinkingPart(text=draw(text)))
    if draw(st.booleans()):
        parts.append(TextPart(text=draw(text)))
    calls = draw(st.lists(tool_calls(), max_size=3, unique_by=lambda c: c.id))
    reason = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    return ChatResponse(
        id="chatcmpl-" + draw(ident),
        model=draw(st.sampled_from(["gpt-4o", "gpt-5-mini"])),
        created=draw(st.integers(1, 2**31)),
        message=Message(role="assistant", content=parts, tool_calls=calls),
        finish_reason=reason,
        raw_finish_reason=reason,
        usage=draw(usages),
    )


def wire(body: dict[str, Any]) -> dict[str, Any]:
    """What actually travels: bytes through orjson and back."""
    return orjson.loads(orjson.dumps(body))


# -- round trips ----------------------------------------------------------------------------------
@SETTINGS
@given(requests(), st.booleans())
def test_request_round_trip(request: ChatRequest, stream: bool) -> None:
    body = wire(codec.encode_request(request, stream=stream))
    assert codec.decode_request(body) == request


@SETTINGS
@given(requests(), st.booleans())
def test_cache_breakpoints_are_dropped_silently(request: ChatRequest, stream: bool) -> None:
    """OpenAI caches prefixes itself: a breakpoint changes nothing on this wire (it is only a hint)."""
    assert codec.encode_request(marked(request), stream=stream) == codec.encode_request(request, stream=stream)


def test_served_parts_may_carry_anthropic_style_cache_control() -> None:
    part = {"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    request = codec.decode_request({"model": "m", "messages": [{"role": "system", "content": [part]}]})
    assert request.messages[0].content == [TextPart(text="long rules", cache_control=CacheControl(ttl="1h"))]
    assert codec.encode_request(request)["messages"] == [{"role": "system", "content": "long rules"}]
    with pytest.raises(errors.InvalidRequestError) as info:
        codec.decode_request({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x", "cache_control": {"type": "forever"}}]}]})
    assert info.value.param == "messages[0].content[0].cache_control"


def test_prompt_cache_key_travels_as_itself() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "prompt_cache_key": "conv-7"}
    request = codec.decode_request(body)
    assert request.prompt_cache_key == "conv-7" and request.provider_options == {}
    assert codec.encode_request(request)["prompt_cache_key"] == "conv-7"


@SETTINGS
@given(responses())
def test_response_round_trip(response: ChatResponse) -> None:
    assert codec.decode_response(wire(codec.encode_response(response))) == response


def canonical_events(
    response: ChatResponse, pieces: int, *, thinking_signatures: bool = False, raw_reason: bool = True
) -> list[StreamEvent]:
    """The canonical stream for ``response``, every text cut into ``pieces``; the Responses wire also
    streams thinking signatures, the Chat wire also carries the raw finish reason."""
    def split(s: str) -> list[str]:
        size = max(1, -(-len(s) // pieces))
        return [s[i : i + size] for i in range(0, len(s), size)]

    events: list[StreamEvent] = [StartEvent(id=response.id, model=response.model)]
    for part in response.message.content:
        if isinstance(part, ThinkingPart):
            events += [ThinkingDelta(text=t) for t in split(part.text)]
            if thinking_signatures and part.signature is not None:
                events.append(ThinkingDelta(signature=part.signature))
        elif isinstance(part, TextPart):
            events += [TextDelta(text=t) for t in split(part.text)]
    for index, call in enumerate(response.message.tool_calls):
        events.append(ToolCallStart(index=index, id=call.id, name=call.name))
        events += [ToolCallDelta(index=index, arguments=a) for a in split(codec.arguments_text(call))]
        events.append(ToolCallEnd(index=index, tool_call=call))
    finish = FinishEvent(reason=response.finish_reason, raw_reason=response.raw_finish_reason if raw_reason else None)
    return [*events, UsageEvent(usage=response.usage), finish]


def decode_bytes(raw: bytes, model: str, cut: int) -> list[StreamEvent]:
    return decode_sse(raw, codec.StreamDecoder(model=model), cut)  # arbitrary network chunk boundaries


@SETTINGS
@given(responses(), st.integers(1, 4), st.integers(1, 64))
def test_stream_round_trip(response: ChatResponse, pieces: int, cut: int) -> None:
    encoder = codec.StreamEncoder(model="ignored")
    raw = b"".join(encoder.encode(e) for e in canonical_events(response, pieces)) + encoder.finish()
    events = decode_bytes(raw, "ignored", cut)
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert sum(isinstance(e, UsageEvent) for e in events) == 1
    assert fold(events) == response.model_copy(update={"created": 0})


@SETTINGS
@given(responses())
def test_stream_fold_equals_non_stream_decode(response: ChatResponse) -> None:
    """The same answer sent both ways decodes to the same canonical response."""
    encoder = codec.StreamEncoder(model=response.model)
    raw = b"".join(encoder.encode(e) for e in canonical_events(response, 2)) + encoder.finish()
    streamed = fold(decode_bytes(raw, response.model, 7))
    plain = codec.decode_response(wire(codec.encode_response(response)))
    assert streamed == plain.model_copy(update={"created": 0})


ALL_ERRORS = [
    cls for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.EPError) and cls is not errors.EPError
]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_error_round_trip(cls: type[errors.EPError]) -> None:
    status, body = codec.encode_error(cls("it failed", param="messages", code=None))
    assert status == cls.status_code
    assert set(body["error"]) == {"message", "type", "param", "code"}
    decoded = codec.decode_error(status, orjson.dumps(body), {})
    assert type(decoded) is cls
    assert decoded.message == "it failed" and decoded.param == "messages"


# -- request quirks ---------------------------------------------------------------------------------
def _req(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatRequest.model_validate({"model": "gpt-4o", **fields})


@pytest.mark.parametrize(
    ("model", "key"),
    [("gpt-4o", "max_tokens"), ("gpt-3.5-turbo", "max_tokens"), ("o3-mini", "max_completion_tokens"),
     ("o1", "max_completion_tokens"), ("gpt-5-mini", "max_completion_tokens")],
)
def test_max_tokens_spelling_follows_model_family(model: str, key: str) -> None:
    body = codec.encode_request(_req(model=model, max_tokens=99))
    assert body[key] == 99
    assert {"max_tokens", "max_completion_tokens"} - {key} - set(body) == {
        "max_tokens", "max_completion_tokens"} - {key}


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_both_max_token_spellings_decode(key: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], key: 42}
    req = codec.decode_request(body)
    assert req.max_tokens == 42 and req.passthrough is None


def test_stream_asks_for_usage_and_plain_does_not() -> None:
    assert codec.encode_request(_req(), stream=True)["stream_options"] == {"include_usage": True}
    plain = codec.encode_request(_req())
    assert "stream" not in plain and "stream_options" not in plain


def test_our_metadata_never_goes_upstream_but_wire_metadata_passes_through() -> None:
    req = _req(metadata=RequestMetadata(persona="architect", team="core", tags={"a": "b"}))
    assert "metadata" not in codec.encode_request(req)
    decoded = codec.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                    "metadata": {"k": "v"}, "logprobs": True, "stream": True})
    assert decoded.passthrough == Passthrough(format="openai", fields={"metadata": {"k": "v"}, "logprobs": True})
    assert codec.encode_request(decoded)["metadata"] == {"k": "v"}


def test_data_url_image_keeps_media_type() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "low"}},
    ]}]}
    image = codec.decode_request(body).messages[0].content[1]
    assert image == ImagePart(data="AAAA", media_type="image/jpeg", detail="low")


def test_tool_result_name_recovered_from_the_call_it_answers_and_is_error_dropped() -> None:
    req = _req(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "boom", "is_error": True},
    ])
    body = codec.encode_request(req)
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "boom"}
    tool = codec.decode_request(wire(body)).messages[2]
    assert tool.name == "get_weather" and tool.is_error is False


def test_unparseable_arguments_are_kept_verbatim() -> None:
    body = {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": tru'}}]}]}
    call = codec.decode_request(body).messages[0].tool_calls[0]
    assert call.raw_arguments == '{"a": tru' and call.arguments == {}
    assert codec.encode_request(codec.decode_request(body))["messages"][0]["tool_calls"][0]["function"][
        "arguments"] == '{"a": tru'


def test_tool_choice_and_response_format_shapes() -> None:
    body = codec.encode_request(_req(
        tools=[{"name": "f"}], tool_choice={"name": "f"}, parallel_tool_calls=False,
        response_format={"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
    ))
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}


def test_reasoning_effort_and_budget() -> None:
    assert codec.encode_request(_req(reasoning={"effort": "high"}))["reasoning_effort"] == "high"
    assert codec.encode_request(_req(reasoning={"budget_tokens": 512}))["reasoning_effort"] == "low"
    assert codec.encode_request(_req(reasoning={"budget_tokens": 32000}))["reasoning_effort"] == "high"
    odd = codec.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                "reasoning_effort": "xhigh"})
    assert odd.reasoning is None and codec.encode_request(odd)["reasoning_effort"] == "xhigh"


def test_legacy_functions_decode_as_tools() -> None:
    req = codec.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                "functions": [{"name": "f", "parameters": {"type": "object"}}],
                                "function_call": {"name": "f"}})
    assert [t.name for t in req.tools] == ["f"] and req.tool_choice == NamedToolChoice(name="f")


@pytest.mark.parametrize(
    ("body", "param", "cls"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", errors.InvalidRequestError),
        ({"model": "m", "messages": []}, "messages", errors.InvalidRequestError),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role",
         errors.InvalidRequestError),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "messages[0].content[0].type", errors.UnsupportedParameterError),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id",
         errors.InvalidRequestError),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n",
         errors.UnsupportedParameterError),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"},
         "tool_choice", errors.InvalidRequestError),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
         "temperature", errors.InvalidRequestError),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str, cls: type[errors.EPError]) -> None:
    with pytest.raises(cls) as info:
        codec.decode_request(body)
    assert type(info.value) is cls and info.value.param == param


# -- response quirks ---------------------------------------------------------------------------------
def _completion(message: dict[str, Any], finish: str | None = "stop", usage: Any = None) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


@pytest.mark.parametrize(
    ("wire_reason", "reason"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
     ("content_filter", "content_filter"), (None, "stop")],
)
def test_finish_reason_mapping(wire_reason: str | None, reason: str) -> None:
    resp = codec.decode_response(_completion({"role": "assistant", "content": "x"}, wire_reason))
    assert resp.finish_reason == reason and resp.raw_finish_reason == wire_reason


def test_usage_details_and_refusal() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
             "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 30}}
    resp = codec.decode_response(_completion({"role": "assistant", "content": None, "refusal": "I can't."},
                                             usage=usage))
    assert resp.usage == Usage(input_tokens=100, output_tokens=40, cached_input_tokens=64, reasoning_tokens=30)
    assert resp.message.text == "I can't."


def test_a_decoded_answer_is_the_object_its_constructors_make() -> None:
    """Same values and the same set fields (what ``model_dump(exclude_unset=True)`` writes) as the
    models' own constructors give, for the answer, its message, its text part and its usage."""
    body = _completion({"role": "assistant", "content": "Hi."},
                       usage={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19})
    resp = codec.decode_response(body)
    expected = ChatResponse(
        id=body["id"], model=body["model"], created=body["created"],
        message=Message(role="assistant", content=[TextPart(text="Hi.")]),
        finish_reason="stop", raw_finish_reason="stop",
        usage=Usage(input_tokens=12, output_tokens=7, cached_input_tokens=0, cache_write_tokens=0,
                    reasoning_tokens=0),
    )
    assert resp == expected
    for got, want in [(resp, expected), (resp.message, expected.message), (resp.usage, expected.usage),
                      (resp.message.content[0], expected.message.content[0])]:
        assert type(got) is type(want)
        assert got.model_fields_set == want.model_fields_set
        assert got.model_dump(exclude_unset=True) == want.model_dump(exclude_unset=True)


def test_a_decoded_request_is_the_object_its_constructors_make() -> None:
    request = codec.decode_request({"model": "gpt-4o", "temperature": 0.5, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi.", "name": "ann"},
        {"role": "user", "content": ""}]})
    expected = ChatRequest(model="gpt-4o", temperature=0.5, messages=[
        Message(role="system", content=[TextPart(text="Be brief.")]),
        Message(role="user", content=[TextPart(text="Hi.")], name="ann"),
        Message(role="user", content=[]),
    ])
    assert request == expected
    pairs = [(request, expected), *zip(request.messages, expected.messages, strict=True),
             (request.messages[0].content[0], expected.messages[0].content[0])]
    for got, want in pairs:
        assert type(got) is type(want)
        assert got.model_fields_set == want.model_fields_set
        assert got.__pydantic_private__ == want.__pydantic_private__
        assert got.model_dump(exclude_unset=True) == want.model_dump(exclude_unset=True)


def test_legacy_function_call_response() -> None:
    resp = codec.decode_response(_completion(
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"a":1}'}},
        "function_call"))
    assert [(c.name, c.arguments) for c in resp.message.tool_calls] == [("f", {"a": 1})]


# -- stream quirks -----------------------------------------------------------------------------------
def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None,
           choices: bool = True) -> SSEEvent:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []}
    if usage is not None:
        body["usage"] = usage
    return SSEEvent(data=orjson.dumps(body).decode())


def test_finish_waits_for_the_usage_chunk() -> None:
    dec = codec.StreamDecoder(model="gpt-4o")
    first = dec.feed(_chunk({"role": "assistant", "content": "Hi"}))
    assert [type(e) for e in first] == [StartEvent, TextDelta]
    assert dec.feed(_chunk(finish="stop")) == []
    tail = dec.feed(_chunk(choices=False, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}))
    assert [type(e) for e in tail] == [UsageEvent, FinishEvent]
    assert tail[0].usage.input_tokens == 3
    assert dec.feed(SSEEvent(data="[DONE]")) == [] and dec.finish() == []


def test_done_without_usage_still_reports_usage_then_finish() -> None:
    dec = codec.StreamDecoder(model="gpt-4o")
    dec.feed(_chunk({"content": "Hi"}))
    dec.feed(_chunk(finish="length"))
    tail = dec.feed(SSEEvent(data="[DONE]"))
    assert [type(e) for e in tail] == [UsageEvent, FinishEvent] and tail[1].reason == "length"


def test_stream_without_finish_reason_does_not_finish() -> None:
    dec = codec.StreamDecoder(model="gpt-4o")
    dec.feed(_chunk({"content": "Hi"}))
    assert dec.finish() == []


def test_tool_fragments_by_index_first_carries_id_and_name() -> None:
    dec = codec.StreamDecoder(model="gpt-4o")
    events = dec.feed(_chunk({"tool_calls": [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": '{"y"'}},
    ]}))
    events += dec.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]}))
    events += dec.feed(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}))
    events += dec.feed(_chunk(finish="tool_calls"))
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(e.index, e.tool_call.id, e.tool_call.name, e.tool_call.arguments) for e in ends] == [
        (0, "call_a", "f", {"x": 1}), (1, "call_b", "g", {"y": 2})]
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta)] == ['{"y"', '{"x": 1}', ": 2}"]


def test_fragments_without_index_are_keyed_by_id() -> None:
    dec = codec.StreamDecoder(model="m")
    events = dec.feed(_chunk({"tool_calls": [
        {"id": "a", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "function": {"name": "g", "arguments": '{"k":1}'}},
    ]}))
    events += dec.feed(_chunk(finish="tool_calls")) + dec.feed(SSEEvent(data="[DONE]"))
    calls = [e.tool_call for e in events if isinstance(e, ToolCallEnd)]
    assert [(c.id, c.arguments) for c in calls] == [("a", {}), ("b", {"k": 1})]


def test_error_chunk_is_raised() -> None:
    dec = codec.StreamDecoder(model="m")
    dec.feed(_chunk({"content": "Hi"}))
    boom = {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}}
    with pytest.raises(errors.UpstreamServerError, match="server had an error"):
        dec.feed(SSEEvent(data=orjson.dumps(boom).decode()))


def test_encoder_emits_openai_chunk_sequence() -> None:
    enc = codec.StreamEncoder(model="gpt-4o")
    events: list[StreamEvent] = [
        StartEvent(id="chatcmpl-1", model="gpt-4o"), TextDelta(text="Hi"),
        ToolCallStart(index=0, id="call_1", name="f"), ToolCallDelta(index=0, arguments='{"a":1}'),
        ToolCallEnd(index=0, tool_call=ToolCall(id="call_1", name="f", arguments={"a": 1})),
        UsageEvent(usage=Usage(input_tokens=5, output_tokens=2)), FinishEvent(reason="tool_calls"),
    ]
    raw = b"".join(enc.encode(e) for e in events) + enc.finish()
    frames = SSEParser().feed(raw)
    assert frames[-1].data == "[DONE]"
    chunks = [orjson.loads(f.data) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 7


def test_encoder_fills_arguments_for_calls_announced_only_at_the_end() -> None:
    enc = codec.StreamEncoder(model="m")
    call = ToolCall(id="c", name="f", arguments={"q": "x"})
    raw = enc.encode(StartEvent(id="i", model="m")) + enc.encode(ToolCallEnd(index=0, tool_call=call))
    raw += enc.encode(UsageEvent(usage=Usage())) + enc.encode(FinishEvent(reason="tool_calls")) + enc.finish()
    assert fold(decode_bytes(raw, "m", 1000)).message.tool_calls == [call]


# -- errors ------------------------------------------------------------------------------------------
def _err(status: int, message: str, type_: str, code: str | None = None, headers: Any = None) -> errors.EPError:
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    return codec.decode_error(status, body, headers or {})


def test_decode_error_taxonomy() -> None:
    ctx = _err(400, "This model's maximum context length is 128000 tokens.", "invalid_request_error",
               "context_length_exceeded")
    assert isinstance(ctx, errors.ContextLengthExceededError) and ctx.code == "context_length_exceeded"
    limited = _err(429, "Rate limit reached", "requests", "rate_limit_exceeded", {"retry-after": "7"})
    assert isinstance(limited, errors.RateLimitError) and limited.retry_after == 7.0
    assert type(_err(401, "Incorrect API key", "invalid_request_error", "invalid_api_key")) is \
        errors.AuthenticationError
    assert type(_err(404, "The model does not exist", "invalid_request_error", "model_not_found")) is \
        errors.NotFoundError
    assert type(_err(500, "The server had an error", "server_error")) is errors.UpstreamServerError
    assert type(_err(503, "The engine is currently overloaded", "server_error")) is errors.OverloadedError
    assert type(_err(400, "Unsupported parameter: 'max_tokens'", "invalid_request_error",
                     "unsupported_parameter")) is errors.UnsupportedParameterError


def test_insufficient_quota_is_a_rate_limit_that_is_not_retried() -> None:
    err = _err(429, "You exceeded your current quota, please check your plan and billing details.",
               "insufficient_quota", "insufficient_quota")
    assert type(err) is errors.QuotaExceededError and isinstance(err, errors.RateLimitError)
    assert not err.retryable and err.status_code == 429
    plain = _err(429, "Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded")
    assert type(plain) is errors.RateLimitError and plain.retryable
    status, body = codec.encode_error(err)
    assert status == 429 and body["error"]["type"] == body["error"]["code"] == "insufficient_quota"


def test_decode_error_tolerates_non_json_bodies() -> None:
    err = codec.decode_error(502, b"<html>Bad Gateway</html>", {})
    assert type(err) is errors.UpstreamServerError and "Bad Gateway" in err.message


def test_encode_error_uses_openai_codes_clients_check() -> None:
    status, body = codec.encode_error(errors.ContextLengthExceededError("too long"))
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    status, body = codec.encode_error(errors.BudgetExceededError("no money"))
    assert status == 402 and body["error"]["type"] == "budget_exceeded"
