"""The official ``anthropic`` SDK, unmodified, against the gateway (served by Anthropic and Gemini fakes)."""

from __future__ import annotations

import anthropic
import pytest

from tests.fakes import Fault, Reply, ToolCallSpec

from .server import GatewayServer


@pytest.fixture
def gateway(either_path: GatewayServer) -> GatewayServer:
    """Every test here runs over the same-format fast path and over the canonical path."""
    return either_path

TOOLS = [
    {"name": "get_weather", "description": "Weather in a city",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "description": "Local time in a city",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
]
CALLS = [ToolCallSpec("get_weather", {"city": "Paris"}), ToolCallSpec("get_time", {"city": "Oslo"})]
MODELS = {"anthropic": "anthropic/claude-sonnet-4-5", "gemini": "gemini/gemini-2.5-flash", "openai": "openai/gpt-4o"}


def sdk(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="gateway-key", max_retries=0, timeout=10)


def test_messages(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text="Hello there."))
    raw = sdk(gateway).messages.with_raw_response.create(
        model=MODELS["anthropic"], max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    message = raw.parse()
    assert message.content[0].text == "Hello there."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12
    assert raw.headers["x-ep-provider"] == "anthropic"


def test_stream_event_sequence(gateway: GatewayServer, fake_gemini) -> None:
    fake_gemini.enqueue(Reply(text="streamed by gemini", chunks=3))
    with sdk(gateway).messages.stream(model=MODELS["gemini"], max_tokens=100,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
    assert final.content[0].text == "streamed by gemini"
    assert final.usage.output_tokens == 7


def _conversation(gateway: GatewayServer, fake, model: str, streaming: bool) -> tuple[list, str]:
    client = sdk(gateway)
    messages: list = [{"role": "user", "content": "weather and time?"}]
    fake.enqueue(Reply(text=None, tool_calls=CALLS))
    if streaming:
        with client.messages.stream(model=model, max_tokens=200, tools=TOOLS, messages=messages) as stream:
            for _ in stream:
                pass
            first = stream.get_final_message()
    else:
        first = client.messages.create(model=model, max_tokens=200, tools=TOOLS, messages=messages)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    calls = [(b.name, b.input) for b in uses]
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
            {"type": "tool_result", "tool_use_id": uses[1].id, "content": "14:00"},
        ]},
    ]
    fake.enqueue(Reply(text="Sunny, 14:00."))
    if streaming:
        with client.messages.stream(model=model, max_tokens=200, tools=TOOLS, messages=messages) as stream:
            text = stream.get_final_text()
    else:
        final = client.messages.create(model=model, max_tokens=200, tools=TOOLS, messages=messages)
        text = "".join(b.text for b in final.content if b.type == "text")
    return calls, text


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_tool_conversation_same_streaming_or_not(gateway: GatewayServer, fake_servers, provider: str) -> None:
    """An Anthropic client, served by Anthropic or by Gemini, sees the same tool calls and final text."""
    fake = fake_servers[provider]
    plain = _conversation(gateway, fake, MODELS[provider], streaming=False)
    streamed = _conversation(gateway, fake, MODELS[provider], streaming=True)
    assert plain == streamed
    assert plain == ([("get_weather", {"city": "Paris"}), ("get_time", {"city": "Oslo"})], "Sunny, 14:00.")
    if provider == "gemini":
        # the tool results reached Gemini as functionResponse parts named after their calls
        contents = fake.requests[-1].body["contents"]
        responses = [p["functionResponse"]["name"] for c in contents for p in c["parts"] if "functionResponse" in p]
        assert responses == ["get_weather", "get_time"]


def test_errors_map_to_sdk_classes(gateway: GatewayServer, fake_anthropic) -> None:
    client = sdk(gateway)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="nosuch/x", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    fake_anthropic.enqueue(*[Fault("status", status=429, retry_after=2) for _ in range(8)])
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODELS["anthropic"], max_tokens=10, messages=[{"role": "user", "content": "x"}])
    fake_anthropic.reset()
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=MODELS["anthropic"], max_tokens=10, messages=[{"role": "robot", "content": "x"}])
    assert info.value.body["type"] == "error"
    assert fake_anthropic.requests == []


def test_in_stream_error_reaches_the_sdk(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Fault("stream_error", after_chunks=1, error_type="overloaded_error",
                                 then=Reply(text="partial answer here", chunks=4)))
    with pytest.raises(anthropic.APIStatusError), sdk(gateway).messages.stream(
        model=MODELS["anthropic"], max_tokens=50, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        for _ in stream:
            pass
