"""The official ``openai`` SDK, unmodified, against the gateway (served by the OpenAI and Anthropic fakes)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes import Fault, Reply, ToolCallSpec

from .server import GatewayServer


@pytest.fixture
def gateway(either_path: GatewayServer) -> GatewayServer:
    """Every test here runs over the same-format fast path and over the canonical path."""
    return either_path

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
]
CALLS = [ToolCallSpec("get_weather", {"city": "Paris"}), ToolCallSpec("get_time", {"city": "Oslo"})]


def sdk(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="gateway-key", max_retries=0, timeout=10)


def test_chat(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Reply(text="Bonjour."))
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Bonjour."
    assert completion.usage is not None and completion.usage.prompt_tokens == 12
    assert raw.headers["x-ep-provider"] == "openai"
    assert raw.headers["x-ep-attempts"] == "1"
    assert fake_openai.requests[-1].body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_usage_only_when_asked(gateway: GatewayServer, fake_openai, include_usage: bool) -> None:
    fake_openai.enqueue(Reply(text="one two three four", chunks=4))
    stream = sdk(gateway).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "count"}], stream=True,
        stream_options={"include_usage": include_usage})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert usage and usage[-1].completion_tokens == 7 and not chunks[-1].choices
    else:
        assert usage == []


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("streaming", [False, True])
def test_parallel_tool_calls_any_upstream(gateway: GatewayServer, fake_servers, provider: str, streaming: bool) -> None:
    """An OpenAI client gets the same parallel tool calls whether OpenAI or Anthropic served them."""
    fake_servers[provider].enqueue(Reply(text=None, tool_calls=CALLS))
    model = "openai/gpt-4o-mini" if provider == "openai" else "anthropic/claude-sonnet-4-5"
    client = sdk(gateway)
    messages = [{"role": "user", "content": "weather and time?"}]
    if streaming:
        with client.chat.completions.stream(model=model, messages=messages, tools=TOOLS) as stream:
            for _ in stream:
                pass
            final = stream.get_final_completion()
    else:
        final = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Oslo"})]
    ids = [c.id for c in choice.message.tool_calls]
    # Second turn: the tool results go back through the gateway to the same upstream.
    fake_servers[provider].enqueue(Reply(text="Sunny, 14:00."))
    follow = [
        *messages,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": ids[0], "content": "sunny"},
        {"role": "tool", "tool_call_id": ids[1], "content": "14:00"},
    ]
    answer = client.chat.completions.create(model=model, messages=follow, tools=TOOLS)
    assert answer.choices[0].message.content == "Sunny, 14:00."


def test_unknown_model_raises_not_found(gateway: GatewayServer) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk(gateway).chat.completions.create(model="nosuch/model", messages=[{"role": "user", "content": "x"}])


def test_upstream_rate_limit_raises_rate_limit_error(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(*[Fault("status", status=429, retry_after=3) for _ in range(8)])
    with pytest.raises(openai.RateLimitError) as info:
        sdk(gateway).chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers.get("retry-after") == "3"


def test_exhausted_quota_is_not_retried_by_the_sdk(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Fault("status", status=429, error_type="insufficient_quota", message="You exceeded your quota"))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="gateway-key", max_retries=2, timeout=10)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.body["type"] == "insufficient_quota"
    assert len(fake_openai.requests) == 1  # without the header the SDK would have retried and succeeded


def test_invalid_request_raises_bad_request(gateway: GatewayServer, fake_openai) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gateway).chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "wizard", "content": "x"}])
    assert info.value.status_code == 400
    assert fake_openai.requests == []


def test_stream_error_before_first_token_is_an_http_error(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(*[Fault("status", status=429) for _ in range(8)])
    with pytest.raises(openai.RateLimitError):
        list(sdk(gateway).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))


def test_models_and_embeddings(gateway: GatewayServer, fake_openai, fake_gemini) -> None:
    client = sdk(gateway)
    assert client.models.list().object == "list"
    out = client.embeddings.create(model="openai/text-embedding-3-small", input=["a b", "c"], dimensions=8)
    assert len(out.data) == 2 and len(out.data[0].embedding) == 8
    assert out.usage.prompt_tokens > 0
    gem = client.embeddings.create(model="gemini/gemini-embedding-001", input="hello", dimensions=4,
                                   encoding_format="float")
    assert len(gem.data) == 1 and len(gem.data[0].embedding) == 4
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="anthropic/claude-sonnet-4-5", input="x")
