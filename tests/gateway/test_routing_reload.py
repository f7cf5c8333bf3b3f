"""SIGHUP reloads the YAML config of a running ``ep serve``: in-flight calls finish where they started,
the next call follows the new persona policy, and an invalid file keeps the old one."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import Fault, Reply
from tests.servers import EpServe, ep_env, ep_serve

from .test_routing_personas import streamed_text

PERSONA = "persona:coder"


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
def served(fake_openai, fake_anthropic, fake_gemini, tmp_path: Path) -> Iterator[tuple[str, Path, EpServe]]:
    config = tmp_path / "ep.yaml"
    config.write_text(_yaml("openai/gpt-4o-mini"))
    env = ep_env(tmp_path, openai=fake_openai, anthropic=fake_anthropic, gemini=fake_gemini)
    with ep_serve(tmp_path, env, "--config", str(config)) as gateway:
        yield gateway.url, config, gateway


def test_sighup_switches_the_persona_without_dropping_the_call_in_flight(
    served, fake_openai, fake_gemini
) -> None:
    url, config, gateway = served
    proc = gateway.proc
    assert proc is not None
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
    url, config, gateway = served
    proc = gateway.proc
    assert proc is not None
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
    gateway.stop()
    out = gateway.output()
    assert "config reload" in out and "keeping the previous configuration" in out
    assert "targetz" in out and "ep.yaml" in out
