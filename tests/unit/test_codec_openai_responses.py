"""The Responses API codec: round trips in both directions (hypothesis) and the wire shapes the
official ``openai`` SDK's own pydantic types accept."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from execution_platform import errors
from execution_platform.codecs import openai_responses as codec
from execution_platform.codecs.sse import SSEEvent, SSEParser
from execution_platform.model import (
    ChatRequest,
    ChatResponse,
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
    ThinkingPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from tests.streams import decode_sse, fold

from .test_codec_openai import (
    SETTINGS,
    canonical_events,
    ident,
    json_value,
    text,
    text_parts,
    tool_calls,
    unit,
    usages,
    wire,
)
from .test_codec_openai import images as any_images

# -- strategies ---------------------------------------------------------------------------------
images = any_images.filter(lambda image: image.detail is not None)  # the wire always names a detail
thinking = st.builds(ThinkingPart, text=text, signature=st.none() | text) | st.builds(
    ThinkingPart, redacted=st.just(True), data=text)


passthrough = st.dictionaries(ident.map(lambda k: "x_" + k), json_value, min_size=1, max_size=2).map(
    lambda fields: Passthrough(format="openai_responses", fields=fields)
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
    if role in ("system", "developer"):
        return Message(role=role, content=[draw(text_parts)])
    if role == "user":
        return Message(role=role, content=draw(st.lists(text_parts | images, min_size=1, max_size=3)))
    if role == "assistant":
        content = draw(st.lists(text_parts | thinking, max_size=3))
        calls = draw(st.lists(tool_calls(), min_size=0 if content else 1, max_size=2))
        return Message(role=role, content=content, tool_calls=calls)
    return Message(role="tool", tool_call_id="toolu_" + draw(ident),
                   content=draw(st.lists(text_parts, min_size=1, max_size=2)))


tool_specs = st.builds(
    ToolSpec,
    name=ident,
    description=st.none() | text,
    parameters=st.builds(lambda props: {"type": "object", "properties": props}, st.dictionaries(
        ident, st.just({"type": "string"}), max_size=3)),
    strict=st.booleans(),  # the Responses API defaults strict to true, so "unset" is sent as false
)
response_formats = st.none() | st.builds(ResponseFormat, type=st.sampled_from(["text", "json_object"])) | st.builds(
    ResponseFormat, type=st.just("json_schema"), name=ident,
    schema=st.just({"type": "object", "properties": {"a": {"type": "integer"}}}),
    strict=st.none() | st.booleans(), description=st.none() | text,
)


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    msgs = draw(st.lists(messages(), min_size=1, max_size=5))
    # Responses items have no turn boundaries: adjacent assistant turns are one turn on this wire.
    assume(all(not (a.role == b.role == "assistant") for a, b in itertools.pairwise(msgs)))
    return ChatRequest(
        model=draw(st.sampled_from(["gpt-4.1", "gpt-5", "o3"])),
        messages=msgs,
        tools=draw(st.lists(tool_specs, max_size=2)),
        tool_choice=draw(st.none() | st.sampled_from(["auto", "none", "required"]) | st.builds(NamedToolChoice,
                                                                                              name=ident)),
        parallel_tool_calls=draw(st.none() | st.booleans()),
        response_format=draw(response_formats),
        temperature=draw(st.none() | unit),
        top_p=draw(st.none() | st.floats(0, 1, allow_nan=False)),
        max_tokens=draw(st.none() | st.integers(1, 200_000)),
        user=draw(st.none() | text),
        reasoning=draw(st.none() | st.builds(Reasoning, effort=st.sampled_from(["minimal", "low", "medium", "high"]))),
        prompt_cache_key=draw(st.none() | ident),
        passthrough=draw(st.none() | passthrough),
    )


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    parts = draw(st.lists(text_parts | st.builds(ThinkingPart, text=text, signature=st.none() | text), max_size=3))
    calls = draw(st.lists(tool_calls(), max_size=3, unique_by=lambda c: c.id))
    reason = draw(st.sampled_from(["length", "content_filter", "tool_calls" if calls else "stop"]))
    return ChatResponse(
        id="resp_" + draw(ident),
        model=draw(st.sampled_from(["gpt-4.1", "claude-sonnet-4-5"])),
        created=draw(st.integers(1, 2**31)),
        message=Message(role="assistant", content=parts, tool_calls=calls),
        finish_reason=reason,
        raw_finish_reason="incomplete" if reason in ("length", "content_filter") else "completed",
        usage=draw(usages),
    )


def no_invented_fields(model: Any) -> None:
    """Every field is one the SDK knows (extras would mean the codec made it up)."""
    assert not getattr(model, "model_extra", None), f"{type(model).__name__}: {model.model_extra}"
    for value in getattr(model, "__dict__", {}).values():
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "model_extra"):
                no_invented_fields(item)


# -- round trips ----------------------------------------------------------------------------------
@SETTINGS
@given(requests(), st.booleans())
def test_request_round_trip(request: ChatRequest, stream: bool) -> None:
    body = wire(codec.encode_request(request, stream=stream))
    assert codec.decode_request(body) == request


@SETTINGS
@given(responses())
def test_response_round_trip_and_sdk_shape(response: ChatResponse) -> None:
    body = wire(codec.encode_response(response))
    no_invented_fields(Response.model_validate(body))
    assert codec.decode_response(body) == response


STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def decode_bytes(raw: bytes, model: str, cut: int) -> list[StreamEvent]:
    """Decode in ``cut``-byte pieces; every event must parse as the SDK's own stream event type."""
    return decode_sse(raw, codec.StreamDecoder(model=model), cut,
                      check=lambda sse: no_invented_fields(STREAM_EVENT.validate_json(sse.data)))


def streamable(response: ChatResponse) -> bool:
    """A stream cannot tell two adjacent text parts (or an unsigned thought and the next) apart."""
    parts = response.message.content
    for a, b in itertools.pairwise(parts):
        if isinstance(a, TextPart) and isinstance(b, TextPart):
            return False
        if isinstance(a, ThinkingPart) and isinstance(b, ThinkingPart) and a.signature is None:
            return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses().filter(streamable), st.integers(1, 4), st.integers(1, 64))
def test_stream_round_trip_with_sdk_typed_events(response: ChatResponse, pieces: int, cut: int) -> None:
    encoder = codec.StreamEncoder(model="ignored")
    raw = b"".join(encoder.encode(e) for e in canonical_events(response, pieces, thinking_signatures=True, raw_reason=False)) + encoder.finish()
    events = decode_bytes(raw, "ignored", cut)
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert fold(events) == response.model_copy(update={"created": 0, "id": encoder.id})
    numbers = [orjson.loads(s.data)["sequence_number"] for s in SSEParser().feed(raw)]
    assert numbers == list(range(len(numbers)))
    assert encoder.final is not None and codec.decode_response(wire(encoder.final)).message == response.message


# -- decoding served requests -------------------------------------------------------------------
def test_string_input_and_instructions() -> None:
    req = codec.decode_request({"model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 9})
    assert [(m.role, m.text) for m in req.messages] == [("system", "be brief"), ("user", "hi")]
    assert req.max_tokens == 9


def test_items_fold_into_turns_and_tool_names_are_recovered() -> None:
    req = codec.decode_request({"model": "m", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "q"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,AAAA",
                                      "detail": "low"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
         "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"x\": 1}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "not json"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
    ]})
    user, assistant, first, second = req.messages
    assert user.content[1] == ImagePart(data="AAAA", media_type="image/png", detail="low")
    assert assistant.content == [ThinkingPart(text="think", signature="opaque"), TextPart(text="calling")]
    assert [(c.id, c.name, c.arguments, c.raw_arguments) for c in assistant.tool_calls] == [
        ("c1", "f", {"x": 1}, None), ("c2", "g", {}, "not json")]
    assert (first.role, first.name, first.text, second.name, second.text) == ("tool", "f", "one", "g", "two")


def test_server_state_fields_are_not_forwarded_but_unknown_ones_are() -> None:
    req = codec.decode_request({"model": "m", "input": "x", "store": True, "previous_response_id": "resp_1",
                                "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
                                "metadata": {"a": "b"}, "truncation": "auto", "x_custom": 1})
    assert req.passthrough == Passthrough(format="openai_responses", fields={"x_custom": 1})
    assert req.prompt_cache_key == "k"


def test_hosted_tools_are_dropped_and_named() -> None:
    body = {"model": "m", "input": "x", "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "web_search"},
        {"type": "namespace", "name": "ns", "tools": []},
    ]}
    assert [t.name for t in codec.decode_request(body).tools] == ["f"]
    assert codec.dropped_tools(body) == ["tools[1]", "tools[2]"]


@pytest.mark.parametrize("kind", [{}, [], ["web_search"]])
def test_a_tool_type_that_is_not_a_string_is_refused_by_name(kind: Any) -> None:
    body = {"model": "m", "input": "x", "tools": [{"type": kind, "name": "f"}]}
    assert codec.dropped_tools(body) == []
    with pytest.raises(errors.InvalidRequestError) as caught:
        codec.decode_request(body)
    assert caught.value.param == "tools[0].type"


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m", "input": 3}, "input"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"model": "m", "input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"model": "m", "input": "x", "tools": [{"type": "mystery"}]}, "tools[0].type"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "function"}}, "tool_choice"),
])
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidRequestError) as caught:
        codec.decode_request(body)
    assert caught.value.param == param


def test_stop_and_seed_cannot_be_sent_upstream() -> None:
    for field, value in (("stop", ["x"]), ("seed", 1)):
        req = ChatRequest(model="m", messages=[Message(role="user", content="x")], **{field: value})
        with pytest.raises(errors.UnsupportedParameterError):
            codec.encode_request(req)


# -- streams and errors ----------------------------------------------------------------------------
def test_encoder_event_sequence() -> None:
    encoder = codec.StreamEncoder(model="m")
    raw = b"".join(encoder.encode(e) for e in [
        StartEvent(id="x", model="m"), TextDelta(text="hi"), UsageEvent(usage=Usage(input_tokens=3, output_tokens=2)),
        FinishEvent(reason="stop")]) + encoder.finish()
    kinds = [sse.event for sse in SSEParser().feed(raw)]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done", "response.completed"]


def test_length_finish_is_an_incomplete_response() -> None:
    encoder = codec.StreamEncoder(model="m")
    encoder.encode(TextDelta(text="cut"))
    encoder.encode(FinishEvent(reason="length"))
    last = list(SSEParser().feed(encoder.finish()))[-1]
    body = orjson.loads(last.data)
    assert last.event == "response.incomplete"
    assert body["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_error_after_start_is_response_failed() -> None:
    encoder = codec.StreamEncoder(model="m")
    encoder.encode(TextDelta(text="partial"))
    [sse] = SSEParser().feed(encoder.error(errors.RateLimitError("slow down")))
    event = STREAM_EVENT.validate_json(sse.data)
    assert event.type == "response.failed" and event.response.error.code == "rate_limit_exceeded"


@pytest.mark.parametrize(("event", "cls"), [
    ({"type": "response.failed", "response": {"status": "failed", "error": {"code": "rate_limit_exceeded",
                                                                           "message": "slow"}}},
     errors.RateLimitError),
    ({"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error",
                                                                           "message": "oops"}}},
     errors.UpstreamServerError),
    ({"type": "error", "code": "invalid_prompt", "message": "no", "param": None}, errors.InvalidRequestError),
])
def test_decoder_raises_upstream_failures(event: dict[str, Any], cls: type[errors.EPError]) -> None:
    decoder = codec.StreamDecoder(model="m")
    with pytest.raises(cls):
        decoder.feed(SSEEvent(event=event["type"], data=orjson.dumps(event).decode()))
