"""The Python SDK surface (``Client``, ``SyncClient``) and ``ep chat``, against the fake upstreams."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from execution_platform import Client, ConfigurationError, NotFoundError, SyncClient
from execution_platform.cli import app
from execution_platform.config.settings import Settings
from execution_platform.model import StreamAccumulator, TextDelta, ToolCallEnd
from tests.fakes.base import FakeUpstream
from tests.fakes.script import Reply, ToolCallSpec

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def settings_for(**fakes: FakeUpstream) -> Settings:
    values: dict[str, str] = {}
    for provider, fake in fakes.items():
        values[f"{provider}_api_key"] = fake.api_key
        values[f"{provider}_base_url"] = fake.base_url
    return Settings(_env_file=None, **values)


async def test_chat_and_stream_through_provider_addresses(fake_openai: FakeUpstream, fake_gemini: FakeUpstream) -> None:
    fake_openai.enqueue(Reply(text="from openai"))
    fake_gemini.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"})]))
    async with Client(settings_for(openai=fake_openai, gemini=fake_gemini)) as client:
        answer = await client.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.message.text == "from openai" and answer.provider == "openai"
        acc = StreamAccumulator()
        ends = 0
        async for event in client.stream(
            model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER]
        ):
            acc.add(event)
            ends += isinstance(event, ToolCallEnd)
    assert ends == 1
    assert acc.response().message.tool_calls[0].arguments == {"city": "Oslo"}
    assert fake_openai.requests[-1].body["model"] == "gpt-4o-mini"
    assert fake_gemini.requests[-1].path.endswith("/models/gemini-2.5-flash:streamGenerateContent")


async def test_missing_key_fails_at_once_naming_the_variable(fake_anthropic: FakeUpstream) -> None:
    async with Client(Settings(_env_file=None, anthropic_base_url=fake_anthropic.base_url)) as client:
        with pytest.raises(ConfigurationError, match="EP_ANTHROPIC_API_KEY"):
            await client.chat(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert fake_anthropic.requests == []


async def test_bad_address_is_not_found() -> None:
    async with Client(Settings(_env_file=None)) as client:
        with pytest.raises(NotFoundError):
            await client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(NotFoundError):
            await client.chat(model="nosuch/model", messages=[{"role": "user", "content": "hi"}])


def test_sync_client_chat_and_stream(fake_anthropic: FakeUpstream) -> None:
    fake_anthropic.enqueue(Reply(text="sync answer"), Reply(text="streamed answer", chunks=4))
    with SyncClient(settings_for(anthropic=fake_anthropic)) as client:
        answer = client.chat(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
        deltas = [
            e.text
            for e in client.stream(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
            if isinstance(e, TextDelta)
        ]
    assert answer.message.text == "sync answer"
    assert len(deltas) > 1 and "".join(deltas) == "streamed answer"


@pytest.mark.parametrize("stream", [False, True], ids=["no-stream", "stream"])
def test_ep_chat_prints_the_answer(fake_openai: FakeUpstream, monkeypatch: pytest.MonkeyPatch, stream: bool,
                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # ep chat records its call in ep.db of the working directory
    monkeypatch.setenv("EP_OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.setenv("EP_OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue(Reply(text="terminal answer", chunks=5))
    args = ["chat", "--model", "openai/gpt-4o-mini", "--stream" if stream else "--no-stream", "hello there"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "terminal answer"
    assert fake_openai.requests[-1].body["messages"][-1]["content"] == "hello there"
    assert fake_openai.requests[-1].body.get("stream", False) is stream


def test_ep_chat_without_key_exits_1_naming_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("EP_GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "EP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["chat", "--model", "gemini/gemini-2.5-flash", "hi"])
    assert result.exit_code == 1
    assert "EP_GEMINI_API_KEY" in result.output
