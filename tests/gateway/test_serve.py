"""``ep serve`` as a real process (uvloop + httptools, factory per worker), configured from a YAML file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes import Reply


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ep_serve_process(fake_openai, tmp_path: Path) -> None:
    config = tmp_path / "ep.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: fast-a, model_name: fast, provider: openai, model: gpt-4o-mini}\n"
        "server: {max_body_bytes: 2048}\n"
    )
    port = _free_port()
    env = {**os.environ, "EP_OPENAI_API_KEY": fake_openai.api_key, "EP_OPENAI_BASE_URL": fake_openai.base_url,
           "EP_DATABASE_URL": f"sqlite:///{tmp_path / 'ep.db'}"}
    env.pop("EP_MASTER_KEY", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port), "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "ep serve did not come up"
                time.sleep(0.1)
        assert health.json()["providers"]["openai"]["configured"] is True
        assert "fast" in [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
        fake_openai.enqueue(Reply(text="served by ep serve"))
        r = httpx.post(url + "/v1/chat/completions",
                       json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert r.json()["choices"][0]["message"]["content"] == "served by ep serve"
        big = httpx.post(url + "/v1/chat/completions",
                         json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 4000}]})
        assert big.status_code == 413
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
