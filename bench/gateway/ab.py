"""Two or more ``ep serve`` configurations side by side in one run, to compare CPU per request.

    .venv/bin/python bench/gateway/ab.py \
        --variant fast:EP_FAST_PATH=1 --variant canonical:EP_FAST_PATH=0 [--rounds 2] [--duration 4]

Same set-up as ``run.py`` (whose helpers it uses): the fake OpenAI upstream, one ``ep serve`` pinned
to core 0 per variant, ``wrk`` with 16 connections on core 1. Variants run in turn, ``--rounds``
times, so a machine that gets slower or faster during the run shifts all of them alike; each
variant's median over the rounds is printed. Absolute figures vary between machines and runs;
compare variants within one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import LOAD_CPU, STREAM_TEXT, FakeOpenAI, Reply, ep_serve, measure  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="NAME:VAR=VALUE[,VAR=VALUE]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    variants = [parse_variant(v) for v in args.variant]
    fake = FakeOpenAI(default=Reply(text=STREAM_TEXT, chunks=20)).start()
    cpu: dict[tuple[str, str], list[float]] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            for name, env in variants:
                saved = {key: os.environ.get(key) for key in env}
                os.environ.update(env)
                work = Path(tmp) / f"{name}-{round_no}"
                work.mkdir()
                try:
                    with ep_serve(fake, work) as subject:
                        pid, url, model = subject.pid, subject.url, subject.model
                        for stream in (False, True):
                            mode = "stream" if stream else "json"
                            body = {"model": model, "messages": [{"role": "user", "content": "benchmark"}],
                                    "stream": stream}
                            result = measure(name, pid, url, body, mode, args.connections, args.duration,
                                             subject.key, subject.headers, 0.0)
                            cpu.setdefault((name, mode), []).append(result.cpu_ms_per_request)
                            rps.setdefault((name, mode), []).append(result.rps)
                            print(f"round {round_no} {name} {mode}: {result.rps} RPS "
                                  f"{result.cpu_ms_per_request} ms CPU/req, {result.errors} errors", flush=True)
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value
    fake.stop()
    print("\n| variant | mode | median RPS | median CPU ms/req |\n|---|---|---|---|")
    for (name, mode), values in cpu.items():
        print(f"| {name} | {mode} | {statistics.median(rps[(name, mode)]):.0f} | {statistics.median(values):.4f} |")


if __name__ == "__main__":
    main()
