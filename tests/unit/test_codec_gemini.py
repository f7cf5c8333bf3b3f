"""Gemini codec: round trips in both directions, stream folding, id synthesis and name mapping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution_platform.codecs import gemini
from execution_platform.codecs.sse import SSEParser
from execution_platform.errors import (
    AuthenticationError,
    BudgetExceededError,
    CapabilityMissingError,
    ContextLengthExceededError,
    EPError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
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

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=20)
ident = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
signature = st.none() | st.from_regex(r"[A-Za-z0-9+/]{4,16}={0,2}", fullmatch=True)
real_id = st.from_regex(r"call_[a-z0-9]{4,10}", fullmatch=True)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ident, children, max_size=3),
    max_leaves=6,
)
args = st.dictionaries(ident, json_value, max_size=3)
text_part = st.builds(TextPart, text=text, signature=signature)
thinking_part = st.builds(ThinkingPart, text=text, signature=signature)
image_part = st.one_of(
    st.builds(
        ImagePart,
        data=st.from_regex(r"[A-Za-z0-9+/]{4,12}", fullmatch=True),
        media_type=st.sampled_from(["image/png", "image/jpeg"]),
    ),
    st.builds(
        ImagePart,
        url=st.from_regex(r"https://x\.test/[a-z]{1,8}\.png", fullmatch=True),
        media_type=st.none() | st.just("image/png"),
    ),
)
tool_call = st.builds(ToolCall, id=real_id, name=ident, arguments=args, signature=signature)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(
            Message(
                role="system",
                content=draw(
                    st.lists(
                        text_part.map(lambda p: p.model_copy(update={"signature": None})),
                        min_size=1,
                        max_size=2,
                    )
                ),
            )
        )
    for _ in range(draw(st.integers(1, 3))):
        messages.append(Message(role="user", content=draw(st.lists(text_part | image_part, max_size=3))))
        calls = draw(st.lists(tool_call, max_size=3, unique_by=lambda c: c.id))
        content = draw(st.lists(thinking_part | text_part, max_size=2))
        if not calls and not content:
            continue
        messages.append(Message(role="assistant", content=content, tool_calls=calls))
        for call in calls:
            is_error = draw(st.booleans())
            result = draw(st.one_of(text, args.map(lambda a: orjson.dumps(a).decode())))
            messages.append(
                Message(role="tool", tool_call_id=call.id, name=call.name, content=result, is_error=is_error)
            )
    return messages


tool_specs = st.lists(
    st.builds(
        ToolSpec,
        name=ident,
        description=st.none() | text,
        parameters=st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.dictionaries(ident, st.just({"type": "string"}), max_size=2),
            }
        ),
    ),
    max_size=3,
    unique_by=lambda t: t.name,
)


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    tools = draw(tool_specs)
    choice = draw(
        st.none()
        | st.sampled_from(["auto", "none", "required"])
        | ident.map(lambda n: NamedToolChoice(name=n))
    )
    fmt = draw(
        st.none()
        | st.just(ResponseFormat(type="json_object"))
        | st.just(ResponseFormat(type="text"))
        | args.map(lambda s: ResponseFormat(type="json_schema", schema={"type": "object", "properties": s}))
    )
    return ChatRequest(
        model="gemini-2.5-flash",
        messages=draw(conversations()),
        tools=tools,
        tool_choice=choice,
        response_format=fmt,
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        max_tokens=draw(st.none() | st.integers(1, 10_000)),
        stop=draw(st.none() | st.lists(text, min_size=1, max_size=3)),
        seed=draw(st.none() | st.integers(0, 2**31)),
        reasoning=draw(
            st.none()
            | st.builds(
                Reasoning,
                effort=st.none() | st.sampled_from(["minimal", "low", "medium", "high"]),
                budget_tokens=st.none() | st.integers(-1, 32_000),
            )
        ),
        top_k=draw(st.none() | st.integers(1, 100)),
        passthrough=draw(
            st.none()
            | st.just(Passthrough(format="gemini", fields={
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}))
            | st.just(Passthrough(format="gemini", fields={"generationConfig": {"responseLogprobs": True}}))
        ),
    )


# -- requests ---------------------------------------------------------------------------------------
@FAST
@given(requests())
def test_request_round_trip_canonical(req: ChatRequest) -> None:
    body = orjson.loads(orjson.dumps(gemini.encode_request(req)))
    assert gemini.decode_request(body, model=req.model) == req


@FAST
@given(requests())
def test_cache_breakpoints_are_dropped_silently(req: ChatRequest) -> None:
    """Gemini caches implicitly (or by a named cachedContent): a breakpoint changes nothing on this wire."""
    assert gemini.encode_request(marked(req)) == gemini.encode_request(req)


@FAST
@given(requests())
def test_request_round_trip_wire(req: ChatRequest) -> None:
    body = gemini.encode_request(req)
    assert gemini.encode_request(gemini.decode_request(body, model=req.model)) == body


def test_request_wire_shape() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(role="developer", content="be brief"),
            Message(
                role="user", content=[TextPart(text="look"), ImagePart(url="data:image/png;base64,AAAA")]
            ),
            Message(
                role="assistant", tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1}, signature="s1")]
            ),
            Message(role="tool", tool_call_id="c1", content='{"ok":true}'),
        ],
        tools=[
            ToolSpec(
                name="f",
                parameters={
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "additionalProperties": False,
                },
            )
        ],
        tool_choice=NamedToolChoice(name="f"),
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
        reasoning=Reasoning(budget_tokens=1024),
        stop="END",
    )
    body = gemini.encode_request(req)
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {"x": 1}, "id": "c1"}, "thoughtSignature": "s1"}],
    }
    # name looked up from the earlier call; a compact JSON object result is sent as the object itself
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}, "id": "c1"}}],
    }
    assert (
        body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["additionalProperties"] is False
    )
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    assert body["generationConfig"] == {
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
    }


def test_consecutive_tool_results_share_one_content_and_plain_text_is_wrapped() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(role="user", content="hi"),
            Message(
                role="assistant",
                tool_calls=[ToolCall(id="gcall_x1", name="a"), ToolCall(id="gcall_x2", name="b")],
            ),
            Message(role="tool", tool_call_id="gcall_x1", content="sunny"),
            Message(role="tool", tool_call_id="gcall_x2", content="boom", is_error=True),
        ],
    )
    body = gemini.encode_request(req)
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "a", "response": {"output": "sunny"}}},
            {"functionResponse": {"name": "b", "response": {"error": "boom"}}},
        ],
    }
    # synthesized ids never reach the wire
    assert "id" not in body["contents"][1]["parts"][0]["functionCall"]


def test_tool_result_without_resolvable_name_is_rejected() -> None:
    req = ChatRequest(model="m", messages=[Message(role="tool", tool_call_id="nope", content="x")])
    with pytest.raises(InvalidRequestError) as info:
        gemini.encode_request(req)
    assert info.value.param == "messages[0].name"


def test_request_ids_are_synthesized_stably_and_results_mapped_by_name_and_order() -> None:
    body: dict[str, Any] = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in two cities, then time"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "weather", "args": {"city": "A"}}},
                    {"functionCall": {"name": "time", "args": {}}},
                    {"functionCall": {"name": "weather", "args": {"city": "B"}}},
                ],
            },
            {
                "role": "function",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"output": "A: sun"}}},
                    {"functionResponse": {"name": "weather", "response": {"output": "B: rain"}}},
                    {"functionResponse": {"name": "time", "response": {"now": "noon"}}},
                ],
            },
        ]
    }
    first = gemini.decode_request(body, model="gemini-2.5-flash")
    assert first == gemini.decode_request(body, model="gemini-2.5-flash")
    calls = first.messages[1].tool_calls
    assert len({c.id for c in calls}) == 3 and all(gemini.is_synthesized(c.id) for c in calls)
    results = first.messages[2:]
    assert [(r.name, r.tool_call_id, r.text) for r in results] == [
        ("weather", calls[0].id, "A: sun"),
        ("weather", calls[2].id, "B: rain"),
        ("time", calls[1].id, '{"now":"noon"}'),
    ]
    # the same history grown by one turn keeps the same ids
    body["contents"].append({"role": "user", "parts": [{"text": "thanks"}]})
    assert gemini.decode_request(body).messages[1].tool_calls == calls
    # and re-encoding gives back id-less wire (role normalised to "user"), structured result preserved
    again = gemini.encode_request(first)
    assert again["contents"][2]["role"] == "user"
    assert again["contents"][2]["parts"] == body["contents"][2]["parts"]
    assert again["contents"][1] == body["contents"][1]


def test_decode_request_passthrough_and_legacy_schemas() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}}
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}},
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "ARRAY", "items": {"type": "NUMBER"}},
            "topK": 3,
            "thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/abc",
    }
    req = gemini.decode_request(body, model="gemini-2.5-pro")
    assert req.model == "gemini-2.5-pro"
    assert req.tools[0].parameters == {"type": "object", "properties": {"a": {"type": "string"}}}
    carried = req.passthrough
    assert carried is not None and carried.format == "gemini"
    assert req.tool_choice is None and carried.fields["toolConfig"] == body["toolConfig"]
    assert req.response_format == ResponseFormat(
        type="json_schema", schema={"type": "array", "items": {"type": "number"}}
    )
    assert req.reasoning == Reasoning(effort="high")
    assert carried.tools == [{"googleSearch": {}}]
    assert req.top_k == 3 and "generationConfig" not in carried.fields
    assert carried.fields["cachedContent"] == "cachedContents/abc"
    out = gemini.encode_request(req)
    assert out["tools"][1] == {"googleSearch": {}}
    assert out["toolConfig"] == body["toolConfig"] and out["safetySettings"] == body["safetySettings"]
    assert out["generationConfig"]["topK"] == 3


def test_decode_request_accepts_proto_field_names_but_leaves_user_data_alone() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]},
            {
                "role": "model",
                "parts": [
                    {"function_call": {"name": "f", "args": {"snake_key": 1}}, "thought_signature": "c2ln"}
                ],
            },
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"snake_key": 2}}}]},
        ],
        "tools": [
            {
                "function_declarations": [
                    {"name": "f", "parameters_json_schema": {"properties": {"snake_key": {}}}}
                ]
            }
        ],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generation_config": {
            "max_output_tokens": 5,
            "top_p": 0.5,
            "thinking_config": {"thinking_budget": 9, "include_thoughts": True},
        },
    }
    req = gemini.decode_request(body, model="m")
    assert req.messages[0] == Message(role="system", content="sys")
    assert req.messages[1].content == [ImagePart(data="AAAA", media_type="image/png")]
    call = req.messages[2].tool_calls[0]
    assert (call.arguments, call.signature) == ({"snake_key": 1}, "c2ln")
    assert req.messages[3].text == '{"snake_key":2}' and req.messages[3].tool_call_id == call.id
    assert req.tools[0].parameters == {"properties": {"snake_key": {}}}
    assert req.tool_choice == NamedToolChoice(name="f")
    assert (req.max_tokens, req.top_p, req.reasoning) == (5, 0.5, Reasoning(budget_tokens=9))
    assert req.provider_options == {} and req.passthrough is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": "hi"}, "contents"),
        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": [{"executableCode": {}}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}, "contents[0]"),
        ({"contents": [], "generationConfig": []}, "generationConfig"),
    ],
)
def test_decode_request_rejects_bad_input(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        gemini.decode_request(body)
    assert info.value.param == param


# -- responses --------------------------------------------------------------------------------------
RAW_FOR = {
    "stop": st.just("STOP"),
    "tool_calls": st.just("STOP"),
    "length": st.just("MAX_TOKENS"),
    "content_filter": st.sampled_from(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"]),
    "error": st.sampled_from(["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"]),
}


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    reasoning = draw(st.integers(0, 500))
    prompt = draw(st.integers(0, 5000))
    return Usage(
        input_tokens=prompt,
        output_tokens=reasoning + draw(st.integers(0, 500)),
        reasoning_tokens=reasoning,
        cached_input_tokens=draw(st.integers(0, prompt)),
    )


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    calls = draw(st.lists(tool_call, max_size=3, unique_by=lambda c: c.id))
    reason = "tool_calls" if calls else draw(st.sampled_from(["stop", "length", "content_filter", "error"]))
    return ChatResponse(
        id=draw(st.from_regex(r"[A-Za-z0-9]{0,12}", fullmatch=True)),
        model=draw(st.sampled_from(["gemini-2.5-flash", "gemini-3-pro-preview"])),
        message=Message(
            role="assistant",
            content=draw(st.lists(thinking_part | text_part | image_part, max_size=3)),
            tool_calls=calls,
        ),
        finish_reason=reason,
        raw_finish_reason=draw(RAW_FOR[reason]),
        usage=draw(usages()),
    )


@FAST
@given(responses())
def test_response_round_trip_canonical(resp: ChatResponse) -> None:
    body = orjson.loads(orjson.dumps(gemini.encode_response(resp)))
    assert gemini.decode_response(body) == resp


@FAST
@given(responses())
def test_response_round_trip_wire(resp: ChatResponse) -> None:
    body = gemini.encode_response(resp)
    assert gemini.encode_response(gemini.decode_response(body)) == body


def test_response_decoding_details() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "plan", "thought": True},
                        {"text": "Calling.", "thoughtSignature": "c2ln"},
                        {"functionCall": {"name": "f", "args": {"q": "x"}}},
                        {"functionCall": {"name": "f", "args": {"q": "y"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 40,
            "totalTokenCount": 150,
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    }
    resp = gemini.decode_response(body)
    assert resp.finish_reason == "tool_calls" and resp.raw_finish_reason == "STOP"
    assert resp.message.content == [ThinkingPart(text="plan"), TextPart(text="Calling.", signature="c2ln")]
    ids = [c.id for c in resp.message.tool_calls]
    assert len(set(ids)) == 2 and ids == [c.id for c in gemini.decode_response(body).message.tool_calls]
    assert ids[0] == gemini.response_call_id("resp-1", 0, "f", {"q": "x"})
    assert resp.usage == Usage(
        input_tokens=100, output_tokens=50, cached_input_tokens=40, reasoning_tokens=30
    )
    assert (resp.id, resp.model) == ("resp-1", "gemini-2.5-flash-001")


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
    ],
)
def test_finish_reasons(wire: str, canonical: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": wire}]}
    assert gemini.decode_response(body).finish_reason == canonical


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    resp = gemini.decode_response(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    )
    assert resp.finish_reason == "content_filter" and resp.usage.input_tokens == 5


# -- streams ----------------------------------------------------------------------------------------
def _decode_stream(raw: bytes, split: int) -> list[Any]:
    return decode_sse(raw, gemini.StreamDecoder(model="m"), split)


@st.composite
def canonical_streams(draw: st.DrawFn) -> list[Any]:
    events: list[Any] = [
        StartEvent(id=draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)), model="gemini-2.5-flash")
    ]
    for thought in draw(st.lists(text, max_size=2)):
        events.append(ThinkingDelta(text=thought))
    if draw(st.booleans()):
        events.append(ThinkingDelta(signature=draw(signature.filter(bool))))
    events.extend(TextDelta(text=t) for t in draw(st.lists(text.filter(bool), max_size=3)))
    if draw(st.booleans()):
        events.append(TextDelta(text="", signature=draw(signature.filter(bool))))
    calls = draw(st.lists(tool_call, max_size=3, unique_by=lambda c: c.id))
    for i, call in enumerate(calls):
        arguments = orjson.dumps(call.arguments).decode()
        events += [
            ToolCallStart(index=i, id=call.id, name=call.name),
            ToolCallDelta(index=i, arguments=arguments[:3]),
            ToolCallDelta(index=i, arguments=arguments[3:]),
            ToolCallEnd(index=i, tool_call=call),
        ]
    events.append(UsageEvent(usage=draw(usages())))
    reason = "tool_calls" if calls else draw(st.sampled_from(["stop", "length", "content_filter"]))
    events.append(FinishEvent(reason=reason, raw_reason=draw(RAW_FOR[reason])))
    return events


@FAST
@given(canonical_streams(), st.integers(1, 64))
def test_stream_round_trip(events: list[Any], split: int) -> None:
    encoder = gemini.StreamEncoder(model="gemini-2.5-flash")
    raw = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    decoded = _decode_stream(raw, split)
    assert isinstance(decoded[0], StartEvent) and isinstance(decoded[-1], FinishEvent)
    assert isinstance(decoded[-2], UsageEvent)
    assert fold(decoded) == fold(events)


@FAST
@given(responses())
def test_stream_fold_equals_decoded_response(resp: ChatResponse) -> None:
    """Serving a response as a stream and decoding it gives what the non-streamed body decodes to."""
    resp = resp.model_copy(
        update={
            "message": resp.message.model_copy(
                update={
                    "content": [p for p in resp.message.content if isinstance(p, TextPart | ThinkingPart)][:1]
                }
            )
        }
    )
    encoder = gemini.StreamEncoder(model=resp.model)
    events: list[Any] = [StartEvent(id=resp.id, model=resp.model)]
    for part in resp.message.content:
        if isinstance(part, TextPart):
            events.append(TextDelta(text=part.text, signature=part.signature))
        else:
            events.append(ThinkingDelta(text=part.text, signature=part.signature))
    events += [ToolCallEnd(index=i, tool_call=c) for i, c in enumerate(resp.message.tool_calls)]
    events += [
        UsageEvent(usage=resp.usage),
        FinishEvent(reason=resp.finish_reason, raw_reason=resp.raw_finish_reason),
    ]
    raw = b"".join(encoder.encode(e) for e in events)
    folded = fold(_decode_stream(raw, 7))
    expected = gemini.decode_response(gemini.encode_response(resp))
    if expected.message.content == [TextPart(text="")]:
        expected.message.content = []  # an empty unsigned text part is no delta at all
    assert folded == expected


def test_stream_synthesizes_the_same_ids_as_the_whole_response() -> None:
    call_parts = [
        {"functionCall": {"name": "f", "args": {"a": 1}}},
        {"functionCall": {"name": "g", "args": {}}},
    ]
    whole = {
        "candidates": [{"content": {"role": "model", "parts": call_parts}, "finishReason": "STOP"}],
        "responseId": "r9",
    }
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}}], "responseId": "r9"},
        {
            "candidates": [{"content": {"role": "model", "parts": call_parts}, "finishReason": "STOP"}],
            "responseId": "r9",
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
        },
    ]
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks)
    events = _decode_stream(raw, 5)
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [e.tool_call.id for e in ends] == [c.id for c in gemini.decode_response(whole).message.tool_calls]
    assert [type(e).__name__ for e in events[-2:]] == ["UsageEvent", "FinishEvent"]
    assert events[-1].reason == "tool_calls" and events[-2].usage.output_tokens == 4


def test_stream_signature_on_first_text_chunk_closes_the_part() -> None:
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "think", "thought": True}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "Hel", "thoughtSignature": "U0lH"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]},
    ]
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    folded = fold(_decode_stream(raw, 1000))
    assert folded.message.content == [ThinkingPart(text="think"), TextPart(text="Hello", signature="U0lH")]


def test_stream_error_chunk_is_raised_and_truncated_stream_has_no_finish() -> None:
    decoder = gemini.StreamDecoder(model="m")
    parser = SSEParser()
    body = (
        b'data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\n\n'
    )
    with pytest.raises(OverloadedError):
        for sse in parser.feed(body):
            decoder.feed(sse)
    events = _decode_stream(b'data: {"candidates": [{"content": {"parts": [{"text": "a"}]}}]}\n\n', 100)
    assert not any(isinstance(e, FinishEvent) for e in events)


# -- errors -----------------------------------------------------------------------------------------
def _google(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": details or []}}
    )


@pytest.mark.parametrize(
    ("code", "status", "message", "cls"),
    [
        (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", RateLimitError),
        (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", OverloadedError),
        (400, "INVALID_ARGUMENT", "Invalid JSON payload", InvalidRequestError),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1201337) exceeds the maximum number of tokens allowed (1048576).",
            ContextLengthExceededError,
        ),
        (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", PermissionDeniedError),
        (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", AuthenticationError),
        (404, "NOT_FOUND", "models/nope is not found for API version v1beta", NotFoundError),
        (500, "INTERNAL", "An internal error has occurred.", UpstreamServerError),
        (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", UpstreamTimeoutError),
    ],
)
def test_decode_error(code: int, status: str, message: str, cls: type[EPError]) -> None:
    err = gemini.decode_error(code, _google(code, status, message), {"retry-after": "7"})
    assert type(err) is cls
    assert (err.upstream_status, err.code, err.message, err.retry_after) == (code, status, message, 7.0)


def test_daily_quota_resource_exhausted_stays_a_retryable_rate_limit() -> None:
    """Gemini's per-day quota answer is still RESOURCE_EXHAUSTED with a retry delay, not a billing failure."""
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "40s"},
    ]
    err = gemini.decode_error(429, _google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details), {})
    assert type(err) is RateLimitError and err.retryable and err.retry_after == 40.0


def test_decode_error_key_invalid_retry_info_and_garbage() -> None:
    info = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
    ]
    assert (
        type(gemini.decode_error(400, _google(400, "INVALID_ARGUMENT", "API key not valid.", info), {}))
        is AuthenticationError
    )
    retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}]
    assert (
        gemini.decode_error(429, _google(429, "RESOURCE_EXHAUSTED", "quota", retry), {}).retry_after == 12.5
    )
    err = gemini.decode_error(502, b"<html>Bad Gateway</html>", {})
    assert isinstance(err, UpstreamServerError) and "Bad Gateway" in err.message


@pytest.mark.parametrize(
    "err",
    [
        RateLimitError("slow down", retry_after=3),
        OverloadedError("busy"),
        InvalidRequestError("bad"),
        ContextLengthExceededError("too long"),
        AuthenticationError("who"),
        PermissionDeniedError("no"),
        NotFoundError("gone"),
        UpstreamTimeoutError("late"),
        UpstreamServerError("broke"),
        BudgetExceededError("broke the bank"),
        CapabilityMissingError("cannot"),
        QuotaExceededError("billing exhausted"),
    ],
)
def test_error_round_trip(err: EPError) -> None:
    status, body = gemini.encode_error(err)
    assert status == err.status_code and set(body["error"]) >= {"code", "message", "status"}
    back = gemini.decode_error(status, orjson.dumps(body), {})
    assert type(back) is type(err) and back.message == err.message and back.retry_after == err.retry_after
