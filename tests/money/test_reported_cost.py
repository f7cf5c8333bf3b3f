"""A provider's own price (the Claude Agent CLI's ``total_cost_usd``) wins over the price list,
streamed or not, in the ledger row and in what the caller sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from execution_platform.client import Client
from execution_platform.config.settings import Settings
from execution_platform.model import StreamAccumulator, UsageEvent
from execution_platform.money.metering import CallContext, call_context
from execution_platform.providers.claude_agent import ClaudeAgentProvider
from tests.fakes import claude_cli as fc

COST = 0.0421  # far from what 100 + 30 tokens cost at any list price
FRAMES = fc.reply_frames("The word is pineapple.", input_tokens=100, output_tokens=30, cost=COST)
HI = [{"role": "user", "content": "What is the word?"}]


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FAKE_CLAUDE_SCRIPT", str(fc.write_script(tmp_path / "script.json", FRAMES)))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(tmp_path / "record.jsonl"))
    settings = Settings(_env_file=None, workspace_root=tmp_path / "workspaces",
                        database_url=f"sqlite:///{tmp_path / 'ep.db'}")
    provider = ClaudeAgentProvider(settings=settings, cli_path=fc.install(tmp_path))
    async with Client(settings, providers={"claude_agent": provider}, meter=True) as c:
        yield c


async def test_streamed_call_is_costed_at_the_reported_price(client: Any) -> None:
    ctx = CallContext(request_id="req-agent-stream")
    with call_context(ctx):
        stream = client.send_stream(client.build_request("claude_agent/sonnet", HI))
    events = [event async for event in stream]
    acc = StreamAccumulator()
    for event in events:
        acc.add(event)
    [usage] = [e for e in events if isinstance(e, UsageEvent)]
    assert usage.cost_usd == pytest.approx(COST) and acc.response().cost_usd == pytest.approx(COST)
    assert ctx.cost_usd == pytest.approx(COST)  # what the gateway reports for the stream
    [row] = client.meter.ledger.rows_sync()
    assert (row["request_id"], row["status"], row["output_tokens"]) == ("req-agent-stream", "ok", 30)
    assert row["cost_usd"] == pytest.approx(COST)


async def test_non_streamed_call_is_costed_at_the_reported_price(client: Any) -> None:
    answer = await client.chat(model="claude_agent/sonnet", messages=HI)
    assert answer.cost_usd == pytest.approx(COST)
    [row] = client.meter.ledger.rows_sync()
    assert row["cost_usd"] == pytest.approx(COST) and row["status"] == "ok"
