"""The official ``openai`` SDK, sync and async, must parse everything FakeOpenAI sends.

Beyond "the SDK did not crash", every body is validated against the SDK's own pydantic types and
checked for invented fields, so a fake that drifts from the real wire format fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from tests.fakes.openai import FakeOpenAI
from tests.fakes.script import Fault, Reply, ToolCallSpec

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=fake_openai.api_key, base_url=fake_openai.base_url, max_retries=0,
                       timeout=5) as sdk:
        yield sdk


@pytest.fixture
async def aclient(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=fake_openai.api_key, base_url=fake_openai.base_url, max_retries=0,
                                  timeout=5) as sdk:
        yield sdk


def no_invented_fields(model: BaseModel) -> None:
    """Every field the fake sends is one the SDK knows (extras would mean the fake made it up)."""
    assert not model.model_extra, f"{type(model).__name__} got unknown fields {model.model_extra}"
    for value in model.__dict__.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                no_invented_fields(item)


def strict_completion(raw: str) -> ChatCompletion:
    completion = ChatCompletion.model_validate(json.loads(raw))
    no_invented_fields(completion)
    return completion


# -- plain answers ------------------------------------------------------------------------------
def test_text_sync(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text="Hi there.", input_tokens=20, output_tokens=3, cached_input_tokens=8,
                              reasoning_tokens=1))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["x-request-id"].startswith("req_")
    completion = raw.parse()
    strict_completion(raw.text)
    assert completion.object == "chat.completion" and completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.message.content == "Hi there." and choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 23
    assert completion.usage.prompt_tokens_details.cached_tokens == 8  # type: ignore[union-attr]
    assert completion.usage.completion_tokens_details.reasoning_tokens == 1  # type: ignore[union-attr]


async def test_text_async(aclient: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(echo=True))
    completion = await aclient.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "echo me"}])
    assert completion.choices[0].message.content == "echo me"


@pytest.mark.parametrize("count", [1, 2], ids=["single", "parallel"])
def test_tool_calls_sync(client: openai.OpenAI, fake_openai: FakeOpenAI, count: int) -> None:
    calls = [ToolCallSpec("get_weather", {"city": "Oslo"}), ToolCallSpec("get_time", {"tz": "UTC"})][:count]
    fake_openai.enqueue(Reply(text=None, tool_calls=calls))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES,
        tools=[{"type": "function", "function": {"name": c.name, "parameters": {"type": "object"}}} for c in calls],
    )
    completion = strict_completion(raw.text)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls" and message.content is None
    assert message.tool_calls is not None
    assert [(t.type, t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls] == [  # type: ignore[union-attr]
        ("function", c.name, c.arguments) for c in calls]
    assert len({t.id for t in message.tool_calls}) == count


class Weather(BaseModel):
    city: str
    celsius: int


def test_json_output_with_parse(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text='{"city": "Oslo", "celsius": -3}'))
    completion = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Oslo", celsius=-3)
    sent = fake_openai.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Weather"


async def test_strict_tool_parse_async(aclient: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("Weather", {"city": "Lima", "celsius": 19})]))
    completion = await aclient.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, tools=[openai.pydantic_function_tool(Weather)]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.parsed_arguments == Weather(city="Lima", celsius=19)  # type: ignore[union-attr]


# -- streams ------------------------------------------------------------------------------------
def test_stream_with_usage_sync(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text="one two three", chunks=3, input_tokens=5, output_tokens=3))
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    for chunk in chunks:
        no_invented_fields(ChatCompletionChunk.model_validate(chunk.model_dump(mode="json", exclude_unset=True)))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_stream_helper_assembles_parallel_tool_calls(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    calls = [ToolCallSpec("a", {"x": 1}), ToolCallSpec("b", {"y": [1, 2, {"z": "w"}]})]
    fake_openai.enqueue(Reply(text="calling", tool_calls=calls))
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES,
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "calling" and final.choices[0].finish_reason == "tool_calls"
    assert [(t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls or []] == [
        ("a", {"x": 1}), ("b", {"y": [1, 2, {"z": "w"}]})]
    assert final.usage is not None and final.usage.prompt_tokens == 12


async def test_stream_async(aclient: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text="streamed", tool_calls=[ToolCallSpec("f", {"q": "r"})]))
    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text, args, usage = "", "", None
    async for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            text += delta.content or ""
            for call in delta.tool_calls or []:
                args += call.function.arguments or ""  # type: ignore[union-attr]
        usage = chunk.usage or usage
    assert text == "streamed" and json.loads(args) == {"q": "r"} and usage is not None


def test_in_stream_error_raises_api_error(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("stream_error", after_chunks=2, message="The server had an error"))
    with pytest.raises(openai.APIError, match="The server had an error"):
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))


def test_disconnect_mid_stream_is_a_connection_error(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("disconnect", after_chunks=2))
    with pytest.raises(openai.APIConnectionError):
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))


def test_slow_first_byte_is_a_timeout(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("slow_first_byte", delay=1.0))
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_malformed_json_is_rejected(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("malformed_json"))
    with pytest.raises((openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


# -- embeddings and models ----------------------------------------------------------------------
@pytest.mark.parametrize("encoding", [None, "float", "base64"])
def test_embeddings_sync(client: openai.OpenAI, fake_openai: FakeOpenAI, encoding: str | None) -> None:
    extra: dict[str, Any] = {"encoding_format": encoding} if encoding else {}
    result = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "alpha"],
                                      dimensions=64, **extra)
    if encoding != "base64":
        no_invented_fields(CreateEmbeddingResponse.model_validate(result.model_dump(mode="json")))
    vectors = [d.embedding for d in result.data]
    assert [d.index for d in result.data] == [0, 1, 2]
    if encoding == "base64":  # the SDK hands back the base64 text untouched when asked explicitly
        assert all(isinstance(v, str) for v in vectors)
    else:
        assert all(len(v) == 64 for v in vectors) and vectors[0] == vectors[2] != vectors[1]
        assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3
    assert result.usage.prompt_tokens > 0 and result.model == "text-embedding-3-small"


async def test_embeddings_async_default_base64(aclient: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    result = await aclient.embeddings.create(model="text-embedding-3-small", input="hello world")
    assert fake_openai.requests[-1].body["encoding_format"] == "base64"
    assert len(result.data[0].embedding) == 1536


def test_models_list_sync(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert "gpt-4o-mini" in {m.id for m in models}
    assert all(m.object == "model" and m.owned_by for m in models)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


async def test_models_list_async(aclient: openai.AsyncOpenAI) -> None:
    assert "gpt-4o" in [m.id async for m in aclient.models.list()]


# -- errors -------------------------------------------------------------------------------------
ERRORS = [
    (400, openai.BadRequestError, None),
    (400, openai.BadRequestError, "context_length_exceeded"),
    (403, openai.PermissionDeniedError, None),
    (404, openai.NotFoundError, None),
    (409, openai.ConflictError, None),
    (422, openai.UnprocessableEntityError, None),
    (429, openai.RateLimitError, None),
    (429, openai.RateLimitError, "insufficient_quota"),
    (500, openai.InternalServerError, None),
    (503, openai.InternalServerError, None),
]


@pytest.mark.parametrize(("status", "cls", "error_type"), ERRORS)
def test_status_errors_sync(client: openai.OpenAI, fake_openai: FakeOpenAI, status: int,
                            cls: type[openai.APIStatusError], error_type: str | None) -> None:
    fake_openai.enqueue(Fault("status", status=status, message="injected", error_type=error_type, retry_after=2))
    with pytest.raises(cls) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    err = info.value
    assert type(err) is cls and err.status_code == status
    assert err.message == f"Error code: {status} - injected"
    assert isinstance(err.body, dict) and set(err.body) == {"message", "type", "param", "code"}
    assert err.type and (error_type is None or err.code == error_type)
    assert err.response.headers["retry-after"] == "2"


@pytest.mark.parametrize(("status", "cls", "error_type"), ERRORS[::3])
async def test_status_errors_async(aclient: openai.AsyncOpenAI, fake_openai: FakeOpenAI, status: int,
                                   cls: type[openai.APIStatusError], error_type: str | None) -> None:
    fake_openai.enqueue(Fault("status", status=status, message="injected", error_type=error_type))
    with pytest.raises(cls):
        await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)


def test_wrong_and_missing_key_are_authentication_errors(fake_openai: FakeOpenAI) -> None:
    with openai.OpenAI(api_key="sk-wrong-0123456789", base_url=fake_openai.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.code == "invalid_api_key" and info.value.type == "invalid_request_error"
    assert "Incorrect API key provided" in info.value.message
    with openai.OpenAI(api_key="placeholder", base_url=fake_openai.base_url, max_retries=0,
                       default_headers={"Authorization": ""}) as anonymous:
        with pytest.raises(openai.AuthenticationError) as info:
            anonymous.models.list()
    assert "didn't provide an API key" in info.value.message and info.value.code is None


# -- what the gateway serves through the codec ---------------------------------------------------
def test_codec_output_is_what_the_sdk_expects() -> None:
    """encode_response / StreamEncoder / encode_error produce bodies the SDK's own types accept."""
    from execution_platform import errors
    from execution_platform.codecs import openai_chat
    from execution_platform.codecs.sse import SSEParser
    from execution_platform.model import (
        ChatResponse,
        FinishEvent,
        Message,
        StartEvent,
        TextDelta,
        ToolCall,
        ToolCallDelta,
        ToolCallEnd,
        ToolCallStart,
        Usage,
        UsageEvent,
    )

    call = ToolCall(id="call_1", name="f", arguments={"a": 1})
    response = ChatResponse(id="chatcmpl-1", model="gpt-4o", finish_reason="tool_calls",
                            message=Message(role="assistant", content="hi", tool_calls=[call]),
                            usage=Usage(input_tokens=3, output_tokens=2, cached_input_tokens=1))
    strict_completion(json.dumps(openai_chat.encode_response(response)))
    encoder = openai_chat.StreamEncoder(model="gpt-4o")
    events = [StartEvent(id="chatcmpl-1", model="gpt-4o"), TextDelta(text="hi"),
              ToolCallStart(index=0, id="call_1", name="f"), ToolCallDelta(index=0, arguments='{"a":1}'),
              ToolCallEnd(index=0, tool_call=call), UsageEvent(usage=response.usage), FinishEvent(reason="tool_calls")]
    raw = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    frames = SSEParser().feed(raw)
    assert frames[-1].data == "[DONE]"
    for frame in frames[:-1]:
        no_invented_fields(ChatCompletionChunk.model_validate(json.loads(frame.data)))
    status, body = openai_chat.encode_error(errors.RateLimitError("slow down"))
    assert status == 429 and set(body["error"]) == {"message", "type", "param", "code"}


def test_prompt_cache_key_reports_cached_prefix_tokens(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    history = [{"role": "system", "content": "Be terse. " * 30}, {"role": "user", "content": "hi"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=history, prompt_cache_key="k1")
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[*history, {"role": "user", "content": "?"}],
                                            prompt_cache_key="k1", stream=True, stream_options={"include_usage": True})
    usage = list(stream)[-1].usage
    other_key = client.chat.completions.create(model="gpt-4o-mini", messages=history, prompt_cache_key="k2")
    assert first.usage is not None and first.usage.prompt_tokens_details.cached_tokens == 0
    assert usage is not None and usage.prompt_tokens_details.cached_tokens > 0
    assert usage.prompt_tokens == 12 + usage.prompt_tokens_details.cached_tokens
    assert other_key.usage is not None and other_key.usage.prompt_tokens_details.cached_tokens == 0
