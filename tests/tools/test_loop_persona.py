"""The tool loop on a persona from the configuration: its tool allow-list decides what is offered and run."""

from __future__ import annotations

import textwrap

import orjson

from execution_platform.client import Client
from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.tools import Agent, ToolRegistry
from tests.fakes.base import FakeUpstream
from tests.fakes.script import Reply, ToolCallSpec


def registry() -> ToolRegistry:
    reg = ToolRegistry(default_timeout=5)
    ran: list[str] = []

    @reg.register
    def temperature(city: str) -> int:
        """Current temperature in Celsius."""
        ran.append("temperature")
        return {"Oslo": 4, "Paris": 15}[city]

    @reg.register
    def difference(a: int, b: int) -> int:
        """a minus b."""
        ran.append("difference")
        return a - b

    @reg.register
    def delete_everything() -> str:
        """Must never run for this persona."""
        ran.append("delete_everything")
        return "gone"

    reg.ran = ran  # type: ignore[attr-defined]
    return reg


def client_for(fake: FakeUpstream) -> Client:
    config = parse_config(textwrap.dedent(f"""
        providers:
          openai: {{api_key: {fake.api_key}, base_url: '{fake.base_url}'}}
        personas:
          analyst:
            targets: [openai/gpt-4o-mini]
            system_prompt: You compare temperatures.
            tools: ['temp*', difference]
        """))
    return Client(Settings(_env_file=None), config=config)


def offered(body: dict) -> list[str]:
    return sorted(t["function"]["name"] for t in body.get("tools", []))


async def test_persona_allow_list_limits_the_tools_offered_and_run(fake_openai: FakeUpstream) -> None:
    fake_openai.enqueue(
        Reply(text=None, tool_calls=[
            ToolCallSpec("temperature", {"city": "Paris"}, id="call_1"),
            ToolCallSpec("delete_everything", {}, id="call_2"),
        ]),
        Reply(text="Paris is 15 degrees."),
    )
    reg = registry()
    async with client_for(fake_openai) as client:
        result = await Agent(client, "persona:analyst", reg).run("How warm is Paris?")
    assert result.stop_reason == "final_answer" and result.text == "Paris is 15 degrees."
    assert reg.ran == ["temperature"]  # the model asked for a tool outside the list: refused, not run
    first, second = (r.body for r in fake_openai.requests if r.method == "POST")
    assert offered(first) == ["difference", "temperature"]
    assert first["messages"][0] == {"role": "system", "content": "You compare temperatures."}
    results = {m["tool_call_id"]: m["content"] for m in second["messages"] if m["role"] == "tool"}
    assert results["call_1"] == "15"
    assert "not allowed" in orjson.dumps(results["call_2"]).decode()


async def test_callers_allow_list_narrows_the_personas(fake_openai: FakeUpstream) -> None:
    fake_openai.enqueue(Reply(text="done"))
    async with client_for(fake_openai) as client:
        agent = Agent(client, "persona:analyst", registry(), allowed_tools=["difference", "delete_everything"])
        await agent.run("Subtract.")
    [body] = [r.body for r in fake_openai.requests if r.method == "POST"]
    assert offered(body) == ["difference"]
