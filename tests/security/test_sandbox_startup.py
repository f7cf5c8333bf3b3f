"""Without bubblewrap the gateway still starts, but ``ep serve`` says at once that run_command is disabled."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.servers import ep_env, ep_serve


def test_ep_serve_warns_when_bubblewrap_is_missing(tmp_path: Path) -> None:
    env = ep_env(tmp_path, keep_ep_vars=False)
    env.update(EP_BWRAP=str(tmp_path / "no-bwrap-here"), EP_WORKSPACE_ROOT=str(tmp_path / "ws"))
    with ep_serve(tmp_path, env) as gateway:
        invoked = httpx.post(gateway.url + "/v1/tools/invoke", json={"name": "run_command", "args": {"command": "ls"}})
    text = gateway.output()
    assert "WARNING: run_command is disabled" in text and "install bubblewrap" in text, text
    assert invoked.status_code == 403, invoked.text
    assert "bubblewrap" in invoked.json()["error"]["message"]
