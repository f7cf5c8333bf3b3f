"""``ep chat`` pays its way: its call gets a ledger row that ``ep costs`` reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execution_platform.cli import app
from tests.fakes.base import FakeUpstream
from tests.fakes.script import Reply

PRICING = "pricing:\n  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}\n"


@pytest.mark.parametrize("stream", [False, True], ids=["no-stream", "stream"])
def test_ep_chat_records_its_call_and_ep_costs_shows_it(
    fake_openai: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    monkeypatch.chdir(tmp_path)  # the default ledger is ep.db in the working directory
    monkeypatch.delenv("EP_DATABASE_URL", raising=False)
    monkeypatch.delenv("EP_REDIS_URL", raising=False)
    monkeypatch.setenv("EP_OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.setenv("EP_OPENAI_BASE_URL", fake_openai.base_url)
    (tmp_path / "ep.yaml").write_text(PRICING)
    monkeypatch.setenv("EP_CONFIG", str(tmp_path / "ep.yaml"))
    fake_openai.enqueue(Reply(text="terminal answer", input_tokens=20, output_tokens=5))
    args = ["chat", "--model", "openai/gpt-4o-mini", "--stream" if stream else "--no-stream", "hello"]
    chat = CliRunner().invoke(app, args)
    assert chat.exit_code == 0, chat.output
    assert chat.output == "terminal answer\n"  # the answer only: no warnings, no migration logs
    assert (tmp_path / "ep.db").is_file()

    shown = CliRunner().invoke(app, ["costs", "--by", "model", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    [group] = json.loads(shown.output)["groups"]
    assert group["group"] == "gpt-4o-mini" and group["requests"] == 1
    assert (group["input_tokens"], group["output_tokens"]) == (20, 5)
    assert group["cost_usd"] == pytest.approx(0.025)
