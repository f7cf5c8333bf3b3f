"""Without bubblewrap the gateway still starts, but ``ep serve`` says at once that run_command is disabled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ep_serve_warns_when_bubblewrap_is_missing(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EP_")}
    env.update(EP_BWRAP=str(tmp_path / "no-bwrap-here"), EP_DATABASE_URL=f"sqlite:///{tmp_path / 'ep.db'}",
               EP_WORKSPACE_ROOT=str(tmp_path / "ws"))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "ep serve exited"
                assert time.monotonic() < deadline, "ep serve did not come up"
                time.sleep(0.1)
        invoked = httpx.post(
            f"http://127.0.0.1:{port}/v1/tools/invoke", json={"name": "run_command", "args": {"command": "ls"}}
        )
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=15)
    text = output.decode(errors="replace")
    assert "WARNING: run_command is disabled" in text and "install bubblewrap" in text, text
    assert invoked.status_code == 403, invoked.text
    assert "bubblewrap" in invoked.json()["error"]["message"]
