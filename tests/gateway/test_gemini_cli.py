"""Gemini CLI (npm ``@google/gemini-cli``, installed by ``scripts/run_validation.sh``) completes
non-interactive turns through the gateway's Gemini surface, served by the Anthropic fake.

It speaks the Gemini API to ``GOOGLE_GEMINI_BASE_URL`` with ``GEMINI_API_KEY`` as its key (sent as
``x-goog-api-key``). Offline: a temporary HOME whose settings pick API-key auth and turn off telemetry
and update checks; the workspace is trusted through the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fakes import Reply, ToolCallSpec

from .conftest import MASTER

MODEL = "anthropic/claude-sonnet-4-5"  # a thinking model: the CLI always sends a thinkingConfig
ROOT = Path(__file__).resolve().parents[2]


def _gemini_binary() -> str | None:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "gemini"
    return str(local) if local.exists() else shutil.which("gemini")


SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "telemetry": {"enabled": False},
}


def run_cli(gateway_url: str, key: str, prompt: str, tmp_path: Path) -> dict:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GEMINI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": gateway_url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_CLI_NO_RELAUNCH": "1",
    }
    done = subprocess.run(
        [str(_gemini_binary()), "-p", prompt, "-m", MODEL, "--output-format", "json"],
        env=env, cwd=work, capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(_gemini_binary() is None, reason="Gemini CLI not installed (scripts/run_validation.sh does)")
def test_gemini_cli_turn_with_a_tool_call(make_gateway, fake_anthropic, tmp_path: Path) -> None:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "gemini-cli", "models": [MODEL]})
    key = created.json()["key"]
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("the secret word is pelican\n")
    fake_anthropic.enqueue(
        Reply(text=None, tool_calls=[ToolCallSpec("read_file", {"file_path": "notes.txt"})]),
        Reply(text="The word is pelican."),
    )
    fake_anthropic.default = Reply(text="ok")  # any side call (titles, summaries) gets a plain answer
    out = run_cli(gw.url, key, "What is the secret word in notes.txt?", tmp_path)
    assert out["response"].strip().endswith("The word is pelican.")
    bodies = [r.body for r in fake_anthropic.requests if r.path == "/v1/messages"]
    declared = {tool["name"] for tool in bodies[0]["tools"]}
    assert "read_file" in declared
    results = [block for body in bodies for message in body["messages"] if isinstance(message["content"], list)
               for block in message["content"] if block.get("type") == "tool_result"]
    assert results and "pelican" in json.dumps(results[-1])
