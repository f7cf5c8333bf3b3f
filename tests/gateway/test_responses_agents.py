"""Agent frameworks on their Responses API models against the gateway's ``/v1/responses``.

The OpenAI Agents SDK with its default model (the Responses API) and pydantic-ai's
``OpenAIResponsesModel`` each run a function tool through the gateway, served by the Anthropic fake.
The model is a deployment name: both frameworks read ``provider/model`` as their own provider prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from execution_platform.config.file import parse_config
from tests.fakes import Reply, ToolCallSpec
from tests.fakes.base import FakeUpstream

from .server import GatewayServer, start_gateway

CONFIG = """
deployments:
  - name: claude-agent-model
    provider: anthropic
    model: claude-sonnet-4-5
"""
MODEL = "claude-agent-model"


@pytest.fixture(scope="module")
def gw(fake_servers: dict[str, FakeUpstream]) -> Iterator[GatewayServer]:
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, {}, config=parse_config(CONFIG))
    yield server
    server.stop()


def script(fake: FakeUpstream) -> None:
    fake.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
                 Reply(text="It is sunny in Paris."))


def tool_result_sent(fake: FakeUpstream) -> str:
    return json.dumps([block for message in fake.requests[-1].body["messages"] for block in message["content"]
                       if isinstance(block, dict) and block.get("type") == "tool_result"])


async def test_openai_agents_sdk_default_model_with_a_function_tool(gw: GatewayServer, fake_anthropic) -> None:
    agents = pytest.importorskip("agents")
    script(fake_anthropic)
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="gateway-key", max_retries=0)
    agents.set_tracing_disabled(True)
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api("responses")

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny, 24C in {city}"

    agent = agents.Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=MODEL)
    result = await agents.Runner.run(agent, "Weather in Paris?")
    assert result.final_output == "It is sunny in Paris."
    assert [r.path for r in fake_anthropic.requests[-2:]] == ["/v1/messages", "/v1/messages"]
    assert "sunny, 24C in Paris" in tool_result_sent(fake_anthropic)
    await client.close()


async def test_pydantic_ai_openai_responses_model_with_a_function_tool(gw: GatewayServer, fake_anthropic) -> None:
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    script(fake_anthropic)
    model = OpenAIResponsesModel(MODEL, provider=OpenAIProvider(base_url=gw.url + "/v1", api_key="gateway-key"))
    agent = Agent(model, instructions="Use the tool.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny, 24C in {city}"

    result = await agent.run("Weather in Paris?")
    assert result.output == "It is sunny in Paris."
    assert "sunny, 24C in Paris" in tool_result_sent(fake_anthropic)
