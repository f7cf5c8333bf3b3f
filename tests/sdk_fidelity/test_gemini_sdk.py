"""The official google-genai SDK must parse everything FakeGemini says, exactly as it parses Google.

If the fake drifts from the real wire format (field names, SSE framing, error bodies), these fail.
"""

from __future__ import annotations

import base64

import pytest
from google import genai
from google.genai import errors, types

from execution_platform.codecs import gemini as gemini_codec
from execution_platform.codecs.sse import SSEParser
from execution_platform.model import (
    ChatResponse,
    FinishEvent,
    Message,
    Reasoning,
    TextDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)
from tests.fakes.gemini import FakeGemini
from tests.fakes.script import Fault, Reply, ToolCallSpec

MODEL = "gemini-2.5-flash"


_clients: list[genai.Client] = []


def client(fake: FakeGemini, key: str | None = None) -> genai.Client:
    """A client with retries off; kept referenced because a collected Client closes its transport."""
    made = genai.Client(
        api_key=key or fake.api_key,
        http_options=types.HttpOptions(
            base_url=fake.base_url, timeout=10_000, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    _clients.append(made)
    return made


def test_generate_content_text_usage_and_ids(fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(
        Reply(
            text="Hello, world", input_tokens=11, output_tokens=9, reasoning_tokens=4, cached_input_tokens=3
        )
    )
    resp = client(fake_gemini).models.generate_content(model=MODEL, contents="hi")
    assert resp.text == "Hello, world"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (11, 5, 4)
    assert usage.cached_content_token_count == 3 and usage.total_token_count == 20
    assert resp.model_version == MODEL and resp.response_id
    sent = fake_gemini.requests[-1]
    assert sent.path.endswith(f"/models/{MODEL}:generateContent")
    assert sent.headers["x-goog-api-key"] == fake_gemini.api_key
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_thoughts_and_signature(fake_gemini: FakeGemini) -> None:
    sig = base64.b64encode(b"opaque-signature").decode()
    fake_gemini.enqueue(Reply(text="Answer", thinking="Reasoning here", thinking_signature=sig))
    resp = client(fake_gemini).models.generate_content(
        model=MODEL,
        contents="think",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=256)
        ),
    )
    parts = resp.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text == "Reasoning here"
    assert parts[1].text == "Answer" and parts[1].thought_signature == b"opaque-signature"
    assert resp.text == "Answer"
    # the SDK sends some nested fields in snake_case; the gateway-side decoder must still understand them
    sent = gemini_codec.decode_request(fake_gemini.requests[-1].body, model=MODEL)
    assert sent.reasoning == Reasoning(budget_tokens=256)


@pytest.mark.parametrize("count", [1, 3])
def test_function_calls(fake_gemini: FakeGemini, count: int) -> None:
    specs = [ToolCallSpec(f"tool_{i}", {"n": i, "tags": ["a", "b"]}) for i in range(count)]
    fake_gemini.enqueue(Reply(text=None, tool_calls=specs))
    decl = types.FunctionDeclaration(
        name="tool_0", description="d", parameters_json_schema={"type": "object"}
    )
    resp = client(fake_gemini).models.generate_content(
        model=MODEL,
        contents="call",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[decl])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    assert [(c.name, c.args) for c in resp.function_calls] == [(s.name, s.arguments) for s in specs]
    assert all(c.id is None for c in resp.function_calls)  # Gemini sends no ids
    sent = gemini_codec.decode_request(fake_gemini.requests[-1].body, model=MODEL)
    assert sent.tools == [ToolSpec(name="tool_0", description="d", parameters={"type": "object"})]


def test_json_output(fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Reply(text='{"city": "Paris", "temp": 21}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}}}
    resp = client(fake_gemini).models.generate_content(
        model=MODEL,
        contents="json please",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    assert resp.parsed == {"city": "Paris", "temp": 21}
    config = fake_gemini.requests[-1].body["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"] == schema


def test_generate_content_stream(fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Reply(text="one two three four", chunks=4, tool_calls=[ToolCallSpec("f", {"x": 1})]))
    chunks = list(client(fake_gemini).models.generate_content_stream(model=MODEL, contents="stream"))
    assert "".join(c.text or "" for c in chunks) == "one two three four"
    assert [(c.name, c.args) for c in chunks[-1].function_calls] == [("f", {"x": 1})]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.prompt_token_count == 12
    assert fake_gemini.requests[-1].query == {"alt": "sse"}


async def test_async_generate_and_stream(fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Reply(echo=True), Reply(text="abcdef", chunks=3))
    aio = client(fake_gemini).aio
    resp = await aio.models.generate_content(model=MODEL, contents="async echo")
    assert resp.text == "async echo"
    pieces = [c.text async for c in await aio.models.generate_content_stream(model=MODEL, contents="s")]
    assert "".join(p or "" for p in pieces) == "abcdef" and len(pieces) == 3


def test_count_tokens_and_embeddings(fake_gemini: FakeGemini) -> None:
    c = client(fake_gemini)
    assert c.models.count_tokens(model=MODEL, contents="four words right here").total_tokens == 4
    one = c.models.embed_content(model="text-embedding-004", contents="hello")
    many = c.models.embed_content(model="text-embedding-004", contents=["hello", "world"])
    assert len(one.embeddings) == 1 and len(one.embeddings[0].values) == 8
    assert many.embeddings[0].values == one.embeddings[0].values
    assert many.embeddings[0].values != many.embeddings[1].values
    names = [m.name for m in c.models.list()]
    assert f"models/{MODEL}" in names


@pytest.mark.parametrize(
    ("fault", "cls", "code", "status"),
    [
        (Fault("status", status=429, retry_after=3), errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        (
            Fault("status", status=400, error_type="context_length_exceeded"),
            errors.ClientError,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            Fault("status", status=404, message="models/nope is not found"),
            errors.ClientError,
            404,
            "NOT_FOUND",
        ),
        (Fault("status", status=500), errors.ServerError, 500, "INTERNAL"),
        (Fault("status", status=503, error_type="overloaded_error"), errors.ServerError, 503, "UNAVAILABLE"),
    ],
)
def test_errors(
    fake_gemini: FakeGemini, fault: Fault, cls: type[errors.APIError], code: int, status: str
) -> None:
    fake_gemini.enqueue(fault)
    with pytest.raises(cls) as info:
        client(fake_gemini).models.generate_content(model=MODEL, contents="x")
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.message
    assert len(fake_gemini.requests) == 1  # no SDK retry hid the fault


def test_bad_key(fake_gemini: FakeGemini) -> None:
    with pytest.raises(errors.ClientError) as info:
        client(fake_gemini, key="not-the-key").models.generate_content(model=MODEL, contents="x")
    assert info.value.code == 400 and "API key not valid" in info.value.message


async def test_async_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Fault("status", status=503, error_type="overloaded_error"))
    with pytest.raises(errors.ServerError) as info:
        await client(fake_gemini).aio.models.generate_content(model=MODEL, contents="x")
    assert info.value.code == 503


def test_served_cached_tokens_parse_as_cached_content_token_count() -> None:
    """What a Gemini surface sends for an upstream that read its prompt cache is what the SDK reads."""
    usage = Usage(input_tokens=300, output_tokens=5, cached_input_tokens=256, cache_write_tokens=20)
    served = ChatResponse(id="r1", model=MODEL, message=Message(role="assistant", content="ok"), usage=usage)
    parsed = types.GenerateContentResponse.model_validate(gemini_codec.encode_response(served))
    assert parsed.usage_metadata.cached_content_token_count == 256
    assert parsed.usage_metadata.prompt_token_count == 300
    encoder = gemini_codec.StreamEncoder(MODEL)
    raw = b"".join(encoder.encode(e) for e in [TextDelta(text="ok"), UsageEvent(usage=usage), FinishEvent(reason="stop")])
    raw += encoder.finish()
    chunks = [types.GenerateContentResponse.model_validate(e.json()) for e in SSEParser().feed(raw) if e.data]
    assert chunks[-1].usage_metadata.cached_content_token_count == 256
