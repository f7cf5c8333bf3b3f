"""GeminiProvider against the Gemini fake: real HTTP, real SSE, real Google error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from execution_platform import errors
from execution_platform.codecs import gemini as codec
from execution_platform.model import (
    ChatRequest,
    FinishEvent,
    Message,
    StartEvent,
    TextDelta,
    ToolCallEnd,
    ToolSpec,
    UsageEvent,
)
from execution_platform.providers.gemini import GeminiProvider
from execution_platform.providers.http import HttpClient
from tests.adapters import adapter_on, asker
from tests.fakes.gemini import FakeGemini
from tests.fakes.script import Fault, Reply, ToolCallSpec
from tests.streams import collect, without_ids

MODEL = "gemini-2.5-flash"
ask = asker(MODEL)


@pytest.fixture
async def provider(fake_gemini: FakeGemini) -> AsyncIterator[GeminiProvider]:
    async with adapter_on(GeminiProvider, fake_gemini) as adapter:
        yield adapter


async def test_chat_sends_gemini_wire_with_key_in_header(
    provider: GeminiProvider, fake_gemini: FakeGemini
) -> None:
    fake_gemini.enqueue(Reply(echo=True, input_tokens=9, output_tokens=5))
    resp = await provider.chat(ask("echo me", temperature=0.1, max_tokens=20, stop=["X"]))
    assert resp.message.text == "echo me" and resp.finish_reason == "stop" and resp.provider == "gemini"
    assert resp.model == MODEL and resp.id
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (9, 5)
    sent = fake_gemini.requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == fake_gemini.api_key and "key" not in sent.query
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "echo me"}]}],
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 20, "stopSequences": ["X"]},
    }


async def test_stream_folds_to_the_non_streamed_answer(
    provider: GeminiProvider, fake_gemini: FakeGemini
) -> None:
    reply = Reply(
        text="The quick brown fox jumps",
        thinking="consider",
        chunks=4,
        input_tokens=30,
        output_tokens=25,
        reasoning_tokens=10,
        cached_input_tokens=8,
        tool_calls=[ToolCallSpec("lookup", {"q": "fox"})],
    )
    fake_gemini.enqueue(reply, reply)
    whole = await provider.chat(ask())
    events, streamed = await collect(provider, ask())
    assert fake_gemini.requests[-1].path.endswith(":streamGenerateContent")
    assert fake_gemini.requests[-1].query == {"alt": "sse"}
    assert isinstance(events[0], StartEvent)
    assert [type(e) for e in events[-2:]] == [UsageEvent, FinishEvent]
    assert sum(isinstance(e, TextDelta) and bool(e.text) for e in events) == 4
    assert without_ids(streamed) == without_ids(whole)
    assert whole.message.content[1].signature  # thought signature kept for the next turn
    assert whole.usage.reasoning_tokens == 10 and whole.usage.cached_input_tokens == 8
    assert whole.usage.output_tokens == 25


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_get_stable_ids_and_the_follow_up_names_results(
    provider: GeminiProvider, fake_gemini: FakeGemini, stream: bool
) -> None:
    calls = [
        ToolCallSpec("weather", {"city": "Paris"}),
        ToolCallSpec("weather", {"city": "Oslo"}),
        ToolCallSpec("time", {}),
    ]
    fake_gemini.enqueue(Reply(text=None, tool_calls=calls))
    tools = [ToolSpec(name="weather"), ToolSpec(name="time")]
    if stream:
        events, resp = await collect(provider, ask("weather?", tools=tools))
        assert sum(isinstance(e, ToolCallEnd) for e in events) == 3
    else:
        resp = await provider.chat(ask("weather?", tools=tools))
    got = resp.message.tool_calls
    assert resp.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in got] == [(s.name, s.arguments) for s in calls]
    assert len({c.id for c in got}) == 3
    assert [c.id for c in got] == [
        codec.response_call_id(resp.id, i, c.name, c.arguments) for i, c in enumerate(got)
    ]
    # follow-up: tool messages carry only the id; the adapter must send each result under its call's name
    history = [
        Message(role="user", content="weather?"),
        resp.message,
        *[Message(role="tool", tool_call_id=c.id, content=f"result {i}") for i, c in enumerate(got)],
    ]
    fake_gemini.enqueue(Reply(text="Done."))
    final = await provider.chat(ChatRequest(model=MODEL, messages=history, tools=tools))
    assert final.message.text == "Done."
    contents = fake_gemini.requests[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p["functionCall"]["name"] for p in contents[1]["parts"]] == ["weather", "weather", "time"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": n, "response": {"output": f"result {i}"}}}
        for i, n in enumerate(["weather", "weather", "time"])
    ]


async def test_thought_signature_goes_back_verbatim(
    provider: GeminiProvider, fake_gemini: FakeGemini
) -> None:
    fake_gemini.enqueue(
        Reply(
            text=None,
            thinking="plan",
            thinking_signature="c2lnbmF0dXJl",
            tool_calls=[ToolCallSpec("f", {"a": 1})],
        )
    )
    resp = await provider.chat(ask())
    assert resp.message.tool_calls[0].signature == "c2lnbmF0dXJl"
    fake_gemini.enqueue(Reply(text="ok"))
    await provider.chat(
        ChatRequest(
            model=MODEL,
            messages=[
                Message(role="user", content="go"),
                resp.message,
                Message(role="tool", tool_call_id=resp.message.tool_calls[0].id, content="1"),
            ],
        )
    )
    model_turn = fake_gemini.requests[-1].body["contents"][1]["parts"]
    assert model_turn[0] == {"text": "plan", "thought": True}
    assert model_turn[1]["thoughtSignature"] == "c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        (Fault("status", status=429, retry_after=2), errors.RateLimitError),
        (Fault("status", status=503, error_type="overloaded_error"), errors.OverloadedError),
        (Fault("status", status=500), errors.UpstreamServerError),
        (Fault("status", status=400, error_type="context_length_exceeded"), errors.ContextLengthExceededError),
        (Fault("status", status=400, message="Invalid value at 'contents'"), errors.InvalidRequestError),
        (Fault("status", status=403, message="denied"), errors.PermissionDeniedError),
        (Fault("status", status=404, message="models/x is not found"), errors.NotFoundError),
        (Fault("slow_first_byte", delay=1.5), errors.UpstreamTimeoutError),
        (Fault("disconnect"), errors.UpstreamConnectionError),
        (Fault("malformed_json"), errors.UpstreamServerError),
    ],
)
async def test_chat_faults_map_to_the_taxonomy(
    provider: GeminiProvider, fake_gemini: FakeGemini, fault: Fault, cls: type[errors.EPError]
) -> None:
    fake_gemini.enqueue(fault)
    with pytest.raises(errors.EPError) as info:
        await provider.chat(ask())
    assert type(info.value) is cls
    assert info.value.provider == "gemini"
    if fault.retry_after:
        assert info.value.retry_after == fault.retry_after


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        (Fault("status", status=429, retry_after=1), errors.RateLimitError),
        (Fault("status", status=503, error_type="overloaded_error"), errors.OverloadedError),
        (Fault("slow_first_byte", delay=1.5), errors.UpstreamTimeoutError),
        (Fault("disconnect", after_chunks=2, then=Reply(chunks=4)), errors.StreamInterruptedError),
        (Fault("disconnect", after_chunks=99), errors.StreamInterruptedError),  # never after the finish
        (Fault("stall", after_chunks=2, delay=2.0, then=Reply(chunks=4)), errors.StreamInterruptedError),
        (Fault("stream_error", after_chunks=1, status=500, message="Internal error"), errors.UpstreamServerError),
        (Fault("malformed_json"), errors.UpstreamServerError),
    ],
)
async def test_stream_faults_map_to_the_taxonomy(
    provider: GeminiProvider, fake_gemini: FakeGemini, fault: Fault, cls: type[errors.EPError]
) -> None:
    fake_gemini.enqueue(fault)
    with pytest.raises(errors.EPError) as info:
        await collect(provider, ask())
    assert type(info.value) is cls


async def test_bad_key_is_an_authentication_error(fake_gemini: FakeGemini) -> None:
    async with adapter_on(GeminiProvider, fake_gemini, api_key="wrong-key-123") as bad:
        with pytest.raises(errors.AuthenticationError):
            await bad.chat(ask())


async def test_missing_key_fails_at_once_naming_the_variable(fake_gemini: FakeGemini) -> None:
    provider = GeminiProvider(api_key=None, base_url=fake_gemini.base_url)
    with pytest.raises(errors.ConfigurationError, match="EP_GEMINI_API_KEY"):
        await provider.chat(ask())
    with pytest.raises(errors.ConfigurationError, match="EP_GEMINI_API_KEY"):
        await anext(aiter(provider.stream(ask())))
    assert fake_gemini.requests == []


def test_urls_and_capabilities() -> None:
    p = GeminiProvider(api_key="k", base_url="https://example.test/")
    assert (
        p.url("gemini-2.5-pro", stream=False)
        == "https://example.test/v1beta/models/gemini-2.5-pro:generateContent"
    )
    assert p.url("models/gemini-2.0-flash", stream=True) == (
        "https://example.test/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    )
    assert GeminiProvider().base_url == "https://generativelanguage.googleapis.com"
    assert "k" not in p.url("gemini-2.5-pro", stream=False).split("models/")[1]
    caps = p.default_capabilities("gemini-2.5-flash")
    assert (
        caps.vision
        and caps.tools
        and caps.json_schema
        and caps.reasoning
        and caps.context_window == 1_048_576
    )
    assert not p.default_capabilities("gemini-2.0-flash").reasoning
    assert p.default_capabilities("gemini-1.5-pro").context_window == 2 * 1_048_576


async def test_fake_accepts_key_query_param_and_streams_arrays_without_sse(fake_gemini: FakeGemini) -> None:
    """Both ways Google accepts a key, and the non-SSE stream shape (one JSON array of chunks)."""
    http = HttpClient()
    try:
        session = http.session()
        url = f"{fake_gemini.base_url}/v1beta/models/{MODEL}:streamGenerateContent?key={fake_gemini.api_key}"
        async with session.post(
            url, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        ) as resp:
            chunks = await resp.json()
        assert resp.status == 200 and isinstance(chunks, list) and len(chunks) == 3
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert "".join(codec.decode_response(c).message.text for c in chunks) == Reply().text
    finally:
        await http.aclose()
