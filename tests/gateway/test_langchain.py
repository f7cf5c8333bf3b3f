"""``langchain-openai``'s ``ChatOpenAI`` against the gateway: invoke, stream, bind_tools."""

from __future__ import annotations

from langchain_openai import ChatOpenAI

from tests.fakes import Reply, ToolCallSpec

from .server import GatewayServer


def llm(gateway: GatewayServer, model: str = "openai/gpt-4o-mini") -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=gateway.url + "/v1", api_key="gateway-key", max_retries=0, timeout=10)


def test_invoke(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Reply(text="Hi from LangChain."))
    answer = llm(gateway).invoke("hello")
    assert answer.content == "Hi from LangChain."
    assert answer.usage_metadata is not None and answer.usage_metadata["input_tokens"] == 12


def test_stream(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text="chunked answer here", chunks=3))
    pieces = [chunk.content for chunk in llm(gateway, "anthropic/claude-sonnet-4-5").stream("hello")]
    assert "".join(pieces) == "chunked answer here"
    assert len([p for p in pieces if p]) >= 2


def test_bind_tools(gateway: GatewayServer, fake_gemini) -> None:
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    fake_gemini.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"})]))
    message = llm(gateway, "gemini/gemini-2.5-flash").bind_tools([get_weather]).invoke("weather in Rome?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "Rome"})]
    sent = fake_gemini.requests[-1].body["tools"][0]["functionDeclarations"][0]
    assert sent["name"] == "get_weather"
