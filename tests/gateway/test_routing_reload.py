"""SIGHUP reloads the YAML config of a running ``ep serve``: in-flight calls finish where they started,
the next call follows the new persona policy, and an invalid file keeps the old one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import Fault, Reply

from .test_routing_personas import streamed_text

PERSONA = "persona:coder"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _yaml(first_target: str) -> str:
    return (
        "routing:\n"
        "  retry: {max_attempts: 1}\n"
        "personas:\n"
        "  coder:\n"
        f"    targets: [{first_target}, anthropic/claude-sonnet-4-5]\n"
        "    system_prompt: You write code.\n"
    )


def _wait_until(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _first_target(url: str) -> str:
    caps = httpx.get(url + "/capabilities", params={"model": PERSONA}).json()
    return caps["personas"]["coder"]["targets"][0]["target"]


@pytest.fixture
def served(fake_openai, fake_anthropic, fake_gemini, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    config = tmp_path / "ep.yaml"
    config.write_text(_yaml("openai/gpt-4o-mini"))
    port = _free_port()
    env = {**os.environ, "EP_DATABASE_URL": f"sqlite:///{tmp_path / 'ep.db'}"}
    for name, fake in (("OPENAI", fake_openai), ("ANTHROPIC", fake_anthropic), ("GEMINI", fake_gemini)):
        env[f"EP_{name}_API_KEY"] = fake.api_key
        env[f"EP_{name}_BASE_URL"] = fake.base_url
    env.pop("EP_MASTER_KEY", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port), "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_until(up, "ep serve to come up", 20)
        yield url, config, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sighup_switches_the_persona_without_dropping_the_call_in_flight(
    served, fake_openai, fake_gemini
) -> None:
    url, config, proc = served
    fake_openai.enqueue(Fault("slow_first_byte", delay=1.0, then=Reply(text="finished on openai", chunks=4)))
    result: dict[str, Any] = {}

    def in_flight() -> None:
        body = {"model": PERSONA, "stream": True, "messages": [{"role": "user", "content": "slow one"}]}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=20) as r:
            result["status"], result["provider"] = r.status_code, r.headers.get("x-ep-provider")
            result["body"] = r.read().decode()

    caller = threading.Thread(target=in_flight)
    caller.start()
    _wait_until(lambda: fake_openai.requests, "the slow call to reach the OpenAI fake")

    # the one-line persona switch, then SIGHUP while that call is still waiting for its first byte
    config.write_text(config.read_text().replace("openai/gpt-4o-mini", "gemini/gemini-2.5-flash"))
    proc.send_signal(signal.SIGHUP)
    _wait_until(lambda: _first_target(url) == "gemini/gemini-2.5-flash", "the reload")
    assert caller.is_alive(), "the slow call should still be in flight during the reload"

    fake_gemini.enqueue(Reply(text="now on gemini"))
    r = httpx.post(url + "/v1/chat/completions",
                   json={"model": PERSONA, "messages": [{"role": "user", "content": "next"}]}, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "now on gemini"
    assert r.headers["x-ep-provider"] == "gemini"
    assert fake_gemini.requests[-1].body["systemInstruction"]["parts"][0]["text"] == "You write code."

    caller.join(20)
    assert result["status"] == 200 and result["provider"] == "openai"
    assert streamed_text("openai", result["body"]) == "finished on openai"
    assert result["body"].rstrip().endswith("data: [DONE]")
    assert len(fake_openai.requests) == 1
    assert proc.poll() is None


def test_sighup_with_an_invalid_file_keeps_the_old_config(served, fake_openai) -> None:
    url, config, proc = served
    config.write_text(_yaml("openai/gpt-4o-mini").replace("targets:", "targetz:"))
    proc.send_signal(signal.SIGHUP)
    fake_openai.enqueue(Reply(text="still on the old config"))

    def answered() -> httpx.Response | None:
        r = httpx.post(url + "/v1/chat/completions",
                       json={"model": PERSONA, "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
        return r if r.status_code == 200 else None

    time.sleep(0.3)  # let the handler run; the server must keep answering either way
    r = _wait_until(answered, "an answer after the bad reload")
    assert r.json()["choices"][0]["message"]["content"] == "still on the old config"
    assert r.headers["x-ep-provider"] == "openai"
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=10)[0].decode()
    assert "config reload" in out and "keeping the previous configuration" in out
    assert "targetz" in out and "ep.yaml" in out
