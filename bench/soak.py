"""Memory soak: does ``ep serve`` keep a flat RSS over a long mixed load?

    .venv/bin/python bench/soak.py [--requests 200000] [--every 5000] [--concurrency 16]

One ``ep serve`` (one worker) over the fake OpenAI upstream receives a mix of requests, chosen by a
fixed pseudo-random sequence: plain completions (40 %), streams (30 %), tool calls (10 %), upstream
errors (10 %, the fake answers 500) and client disconnects mid-stream (10 %: the upstream sends a few
chunks and stalls, the client reads one chunk and closes the connection). Every ``--every`` requests
the resident memory of the serving process tree is sampled. The curve goes to ``soak.csv`` and
``soak.md`` beside this file, with the verdict of issue 14: after the first 20 000 requests, RSS
grows by less than 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from serving import free_port, tree_rss_mb, wait_http  # noqa: E402
from tests.fakes import Fault, Reply, ToolCallSpec  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.fakes.script import Script  # noqa: E402

MIX = (("plain", 40), ("stream", 30), ("tool", 10), ("error", 10), ("disconnect", 10))
WARM = 20_000  # the warm-up: growth is measured from here
TEXT = " ".join(f"w{i:02d}" for i in range(20))
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


class SoakUpstream(FakeOpenAI):
    """The fake, answering by the kind named in the request's user message (requests run
    concurrently, so a queue of scripts would not line up), and forgetting what it recorded."""

    SCRIPTS: dict[str, Script] = {
        "plain": Reply(text=TEXT, chunks=20),
        "stream": Reply(text=TEXT, chunks=20),
        "tool": Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
        "error": Fault(kind="status", status=500, message="soak: upstream failure"),
        "disconnect": Fault(kind="stall", after_chunks=3, delay=0.5, then=Reply(text=TEXT, chunks=20)),
    }

    def next_script(self) -> Script:
        body = self.requests[-1].body
        del self.requests[:-1]  # 200 000 recorded bodies would be the fake's leak, not the gateway's
        kind = body["messages"][-1]["content"].removeprefix("soak:") if isinstance(body, dict) else "plain"
        return self.SCRIPTS.get(kind, self.SCRIPTS["plain"])


def body_for(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"soak:{kind}"}]}
    if kind in ("stream", "disconnect"):
        body["stream"] = True
    if kind == "tool":
        body["tools"] = TOOLS
    return body


async def one(session: aiohttp.ClientSession, url: str, kind: str) -> str:
    """Send one request of ``kind``; returns an outcome label for the summary."""
    try:
        async with session.post(url, json=body_for(kind)) as resp:
            if kind == "disconnect":
                await resp.content.readany()  # the first bytes of the stream, then hang up
                resp.close()
                return f"{kind}:{resp.status}:closed"
            await resp.read()
            return f"{kind}:{resp.status}"
    except aiohttp.ClientError as exc:
        return f"{kind}:{type(exc).__name__}"


async def drive(url: str, pid: int, total: int, every: int, concurrency: int) -> tuple[list[tuple[int, float, float]],
                                                                                      collections.Counter[str]]:
    rng = random.Random(14)
    kinds = [k for k, weight in MIX for _ in range(weight)]
    outcomes: collections.Counter[str] = collections.Counter()
    curve = [(0, 0.0, tree_rss_mb(pid))]
    started = time.monotonic()
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def worker(budget: list[int]) -> None:
            while budget[0] > 0:
                budget[0] -= 1
                outcomes[await one(session, url, rng.choice(kinds))] += 1

        while sent < total:
            batch = min(every, total - sent)
            await asyncio.gather(*(worker([batch // concurrency + (1 if i < batch % concurrency else 0)])
                                   for i in range(concurrency)))
            sent += batch
            curve.append((sent, round(time.monotonic() - started, 1), tree_rss_mb(pid)))
            print(f"{sent:>7} requests  {curve[-1][1]:>7.1f} s  RSS {curve[-1][2]:.1f} MB", flush=True)
    return curve, outcomes


def report(curve: list[tuple[int, float, float]], outcomes: collections.Counter[str], args: argparse.Namespace) -> str:
    base = next((rss for n, _, rss in curve if n >= WARM), curve[-1][2])
    final, peak = curve[-1][2], max(rss for n, _, rss in curve if n >= WARM) if curve[-1][0] >= WARM else curve[-1][2]
    growth = (final - base) / base * 100
    peak_growth = (peak - base) / base * 100
    lines = [
        f"`ep serve` (one worker) over the fake OpenAI upstream, {curve[-1][0]} requests at concurrency "
        f"{args.concurrency}, mix {', '.join(f'{k} {w} %' for k, w in MIX)}; RSS of the serving process tree "
        f"every {args.every} requests (`python bench/soak.py --requests {args.requests} --every {args.every} "
        f"--concurrency {args.concurrency}`).",
        "",
        f"**After the first {WARM} requests: {base:.1f} MB → {final:.1f} MB at the end ({growth:+.1f} %), peak "
        f"{peak:.1f} MB ({peak_growth:+.1f} %); acceptance: growth under 10 % — "
        f"{'met' if max(growth, peak_growth) < 10 else 'NOT met'}.**",
        "",
        "| requests | seconds | RSS MB |",
        "|---|---|---|",
        *(f"| {n} | {t} | {rss:.1f} |" for n, t, rss in curve),
        "",
        "Outcomes (kind:status):",
        "",
        "| outcome | count |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(outcomes.items())),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(HERE / "soak"), help="path prefix of the .csv and .md written")
    args = parser.parse_args()
    fake = SoakUpstream().start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EP_OPENAI_API_KEY": fake.api_key, "EP_OPENAI_BASE_URL": fake.base_url,
               "EP_DATABASE_URL": f"sqlite:///{Path(tmp) / 'ep.db'}"}
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port)], env=env,
                                cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            curve, outcomes = asyncio.run(drive(f"http://127.0.0.1:{port}/v1/chat/completions", proc.pid,
                                                args.requests, args.every, args.concurrency))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    fake.stop()
    Path(args.out + ".csv").write_text("requests,seconds,rss_mb\n" + "".join(f"{n},{t},{r:.1f}\n" for n, t, r in curve))
    text = report(curve, outcomes, args)
    Path(args.out + ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
