"""Start-up time and idle memory of ``ep serve``.

    .venv/bin/python bench/startup.py [--runs 5] [--workers 1]

Each run spawns ``ep serve`` over the fake OpenAI upstream and polls ``POST /v1/chat/completions``
every 10 ms until one is answered (200): that interval, from spawn, is the start-up time an operator
sees, with the RSS of its whole process tree right after. Separately, a gateway is started, answers
``/health`` only, rests a second and its tree's resident memory is read: ``idle RSS``. Each measure is
taken on a fresh database (migrated at start) and again on the same one (a restart).
Results go to ``startup.md`` beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from serving import free_port, tree_rss_mb  # noqa: E402
from tests.fakes import Reply  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def spawn(fake: FakeOpenAI, work: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "EP_OPENAI_API_KEY": fake.api_key, "EP_OPENAI_BASE_URL": fake.base_url,
           "EP_DATABASE_URL": f"sqlite:///{work / 'ep.db'}"}
    cmd = [str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def poll(proc: subprocess.Popen[bytes], client: httpx.Client, method: str, url: str, interval: float) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"ep serve exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if client.request(method, url, json=BODY if method == "POST" else None).status_code == 200:
                return
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)


def startup(fake: FakeOpenAI, work: Path, workers: int) -> tuple[float, float]:
    """(seconds from spawn to the first answered chat, RSS MB right after it)."""
    started = time.perf_counter()
    proc, url = spawn(fake, work, workers)
    try:
        with httpx.Client(timeout=5) as client:
            poll(proc, client, "POST", url + "/v1/chat/completions", 0.01)
            elapsed = time.perf_counter() - started
        return elapsed, tree_rss_mb(proc.pid)
    finally:
        stop(proc)


def idle(fake: FakeOpenAI, work: Path, workers: int) -> float:
    """RSS MB of the started gateway (``/health`` answered, no chat yet) after a second of rest."""
    proc, url = spawn(fake, work, workers)
    try:
        with httpx.Client(timeout=5) as client:
            poll(proc, client, "GET", url + "/health", 0.05)
        time.sleep(1.0)
        return tree_rss_mb(proc.pid)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "startup.md"))
    args = parser.parse_args()
    fake = FakeOpenAI(default=Reply(text="hello")).start()
    rows: dict[str, dict[str, list]] = {"fresh database": {}, "existing database": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for label, measure in (("startup", startup), ("idle", idle)):
                work = Path(tmp) / f"{label}{i}"
                work.mkdir()
                fresh = measure(fake, work, args.workers)  # migrates at start
                existing = measure(fake, work, args.workers)  # already current: a restart
                rows["fresh database"].setdefault(label, []).append(fresh)
                rows["existing database"].setdefault(label, []).append(existing)
            fake.reset()
    fake.stop()
    lines = [f"`ep serve --workers {args.workers}`, {args.runs} runs each; start-up = spawn to the first "
             "answered chat completion; RSS = whole process tree.", "",
             "| database | start-up median s | start-up max s | idle RSS MB (median) | RSS after first chat MB |",
             "|---|---|---|---|---|"]
    for name, values in rows.items():
        times, answered = zip(*values["startup"], strict=True)
        lines.append(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} | "
                     f"{statistics.median(values['idle']):.1f} | {statistics.median(answered):.1f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
