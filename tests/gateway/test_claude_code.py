"""The Claude Code CLI (bundled in the claude-agent-sdk wheel) completes a turn through the gateway.

It speaks the Anthropic Messages API to ``ANTHROPIC_BASE_URL`` with a gateway key; the gateway serves
it from the fake OpenAI upstream. Offline: temporary HOME, nonessential traffic disabled.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fakes import Reply

from .conftest import MASTER

MODEL = "openai/gpt-5-mini"  # a reasoning model: Claude Code asks for thinking and 32k output tokens


def _claude_binary() -> Path | None:
    try:
        import claude_agent_sdk
    except ImportError:
        return None
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return path if path.exists() else None


@pytest.mark.skipif(_claude_binary() is None, reason="claude-agent-sdk wheel without the bundled CLI")
def test_claude_code_turn_served_by_openai(make_gateway, fake_openai, tmp_path: Path) -> None:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "claude-code", "models": [MODEL]})
    key = created.json()["key"]
    fake_openai.default = Reply(text="Hello from the OpenAI upstream.")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": gw.url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    try:
        done = subprocess.run(
            [str(_claude_binary()), "-p", "say hi", "--model", MODEL, "--output-format", "json"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )
    finally:
        fake_openai.default = Reply()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["is_error"] is False
    assert result["result"] == "Hello from the OpenAI upstream."
    served = [r for r in fake_openai.requests if r.path == "/v1/chat/completions"]
    assert served and served[-1].body["model"] == "gpt-5-mini"
    assert key not in json.dumps([r.body for r in served])
