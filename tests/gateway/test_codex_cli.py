"""Codex CLI (npm ``@openai/codex``, native binary inside the package) completes a turn through the gateway.

Codex speaks only the Responses API to a custom model provider (``wire_api = "responses"``); the gateway
serves it from the fake Anthropic upstream. The turn makes a real tool call: the scripted model asks for
``exec_command``, Codex runs the shell command locally and sends its output back, and the model answers.
Offline: a private CODEX_HOME with the provider in ``config.toml`` and the key in an environment variable.
``scripts/run_validation.sh`` installs the CLI under ``.tools/node``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fakes import Reply, ToolCallSpec

from .conftest import MASTER

MODEL = "anthropic/claude-sonnet-4-5"
CODEX = Path(__file__).resolve().parents[2] / ".tools" / "node" / "node_modules" / ".bin" / "codex"


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI not installed (scripts/run_validation.sh installs it)")
def test_codex_exec_turn_with_a_shell_tool_call_served_by_anthropic(make_gateway, fake_anthropic,
                                                                   tmp_path: Path) -> None:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "codex", "models": [MODEL]}).json()
    key, key_id = created["key"], created["id"]
    fake_anthropic.enqueue(
        Reply(text=None, tool_calls=[ToolCallSpec("exec_command", {"cmd": "echo codex-tool-$((6*7))"})]),
        Reply(text="The command printed codex-tool-42."),
    )
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "gateway"\n\n[model_providers.gateway]\nname = "gateway"\n'
        f'base_url = "{gw.url}/v1"\nenv_key = "EP_GATEWAY_KEY"\nwire_api = "responses"\n'
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home),
           "EP_GATEWAY_KEY": key}
    done = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access", "--json",
         "Print the answer to 6*7 with a shell command."],
        env=env, cwd=work, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    commands = [i for i in items if i.get("type") == "command_execution"]
    assert commands and "codex-tool-42" in commands[0]["aggregated_output"]
    assert any(i.get("type") == "agent_message" and i["text"] == "The command printed codex-tool-42." for i in items)
    served = [r for r in fake_anthropic.requests if r.path == "/v1/messages"]
    assert len(served) >= 2
    tool_results = [block for message in served[1].body["messages"] for block in message["content"]
                    if isinstance(block, dict) and block.get("type") == "tool_result"]
    assert tool_results and "codex-tool-42" in json.dumps(tool_results)  # the command's output went back
    assert key not in json.dumps([r.body for r in served])
    rows = [row for row in gw.gateway.client.meter.ledger.rows_sync() if row["key_id"] == key_id]
    assert len(rows) == len(served) and all(row["provider"] == "anthropic" and row["status"] == "ok" for row in rows)
