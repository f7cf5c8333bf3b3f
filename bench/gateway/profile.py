"""Where ``ep serve`` spends its CPU under load: py-spy on the running gateway, broken down by layer.

    .venv/bin/python bench/gateway/profile.py [--duration 8] [--out profile.md]

Same set-up as ``run.py`` (whose helpers it uses): the fake OpenAI upstream in this process, one
``ep serve`` pinned to core 0, ``wrk`` with 16 connections on core 1, non-streamed then streamed
(20 chunks). While ``wrk`` runs, ``py-spy record --format raw`` samples every thread of the gateway
(the ledger writer too); each sample is put in one layer by its innermost frame that says which (see
``LAYERS``), and the table gives each layer's share of the samples and of the measured CPU per request.
py-spy's sampling costs the gateway some CPU itself, so the CPU column is the run's, not a clean bench
figure: compare shares here and ratios in ``run.py``. Needs ``py-spy`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    LOAD_CPU,
    STREAM_TEXT,
    TICKS,
    FakeOpenAI,
    Reply,
    ep_serve,
    parse_wrk,
    tree_cpu_ticks,
    wrk_lua,
)

# (layer, file-path pattern, function pattern or None). The innermost frame matching a rule decides;
# library frames with no rule (pydantic, asyncio, typing…) pass the sample to their caller.
RULES: list[tuple[str, str, str | None]] = [
    ("ledger/observability", r"execution_platform/(gateway/(observe|metrics|middleware)|tracing|money/ledger|storage/)", None),
    ("ledger/observability", r"(prometheus_client|opentelemetry|sqlalchemy|sqlite3|/logging/)", None),
    ("JSON decode", r"execution_platform/gateway/limits\.py", r"read_json|_depth|json"),
    ("JSON decode", r"execution_platform/gateway/(bodies|fast_path)\.py", r"read|json|loads"),
    ("wire tap (fast path)", r"execution_platform/codecs/wire\.py", None),
    ("wire tap (fast path)", r"execution_platform/codecs/", r"WireTap"),
    ("canonical model", r"execution_platform/codecs/", r"decode|Decoder|feed|passthrough|_passthrough"),
    ("canonical model", r"execution_platform/codecs/passthrough\.py", None),
    ("canonical model", r"execution_platform/model/", None),
    ("re-encode", r"execution_platform/codecs/", None),
    ("re-encode", r"execution_platform/gateway/responses\.py", None),
    ("routing/metering/policy", r"execution_platform/(routing|money)/", None),
    ("routing/metering/policy", r"execution_platform/(client|gateway/(calls|auth|metadata|money|limits|state))\.py", None),
    ("upstream client", r"execution_platform/providers/", None),
    ("upstream client", r"/(aiohttp|yarl|multidict|aiohappyeyeballs)/", None),
    ("server HTTP", r"execution_platform/gateway/", None),
    ("server HTTP", r"/(uvicorn|starlette|fastapi|httptools|h11|anyio|uvloop)/", None),
]
_COMPILED = [(layer, re.compile(path), re.compile(func) if func else None) for layer, path, func in RULES]
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")
OTHER = "event loop/other"
ORDER = ["server HTTP", "JSON decode", "canonical model", "wire tap (fast path)", "routing/metering/policy",
         "upstream client", "re-encode", "ledger/observability", OTHER]


def layer_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        match = _FRAME.match(frame)
        func, file = (match["func"], match["file"]) if match else (frame, "")
        for layer, path, fn in _COMPILED:
            if path.search(file) and (fn is None or fn.search(func)):
                return layer
    return OTHER


def breakdown(raw: Path) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """Samples per layer, and the hottest innermost execution_platform functions (self+children)."""
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        stack = stack_text.split(";")
        # drop py-spy's leading "process/thread" frames: they have no file
        stack = [frame for frame in stack if "(" in frame]
        layers[layer_of(stack)] += count
        total += count
        for frame in reversed(stack):
            if "execution_platform/" in frame:
                match = _FRAME.match(frame)
                if match:
                    functions[f"{match['func']} ({match['file'].split('execution_platform/')[-1]})"] += count
                break
    return layers, functions, total


def profile_mode(pid: int, url: str, body: dict, key: str, duration: int, out: Path,
                 native: bool = False) -> tuple[float, float, int]:
    script = wrk_lua(body, key, {})
    wrk = ["taskset", "-c", LOAD_CPU, "wrk", "-t2", "-c16", "--latency", "-s", str(script), url]
    subprocess.run([*wrk[:5], "-d2s", *wrk[5:]], capture_output=True, check=False)  # warm-up
    spy = subprocess.Popen(["taskset", "-c", LOAD_CPU, str(Path(sys.executable).parent / "py-spy"), "record",
                            "--pid", str(pid), "--rate", "250", "--format", "raw", "--duration", str(duration + 1),
                            "--output", str(out), "--gil",
                            *(["--native"] if native else ["--nonblocking"])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    before = tree_cpu_ticks(pid)
    text = subprocess.run([*wrk[:5], f"-d{duration}s", *wrk[5:]], capture_output=True, text=True, check=True).stdout
    used_ms = (tree_cpu_ticks(pid) - before) * 1000 / TICKS
    spy.wait(60)
    script.unlink()
    rps, _, _, requests, errors = parse_wrk(text)
    return rps, used_ms / max(requests, 1), errors


def report(title: str, results: dict[str, tuple[float, float, int, Path]]) -> str:
    lines = [f"# {title}", "", __doc__.strip().splitlines()[0], "",
             "Command: `.venv/bin/python bench/gateway/profile.py "
             + " ".join(sys.argv[1:]) + "`", ""]
    for mode, (rps, cpu_ms, errors, raw) in results.items():
        layers, functions, total = breakdown(raw)
        lines += [f"## {mode}: {rps:.0f} RPS, {cpu_ms:.3f} ms CPU per request (under py-spy), {errors} errors,"
                  f" {total} samples", "",
                  "| layer | share | ≈ ms CPU per request |", "|---|---|---|"]
        for layer in ORDER:
            share = layers.get(layer, 0) / max(total, 1)
            lines.append(f"| {layer} | {share:.1%} | {share * cpu_ms:.3f} |")
        lines += ["", "Hottest innermost gateway functions (their own time plus the libraries they call):", "",
                  "| function | share |", "|---|---|"]
        lines += [f"| `{name}` | {count / max(total, 1):.1%} |" for name, count in functions.most_common(15)]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--out", default="profile.md", help="markdown file written beside this script")
    parser.add_argument("--title", default="Profile of ep serve under wrk")
    parser.add_argument("--keep-raw", action="store_true", help="keep py-spy's raw stacks beside the report")
    parser.add_argument("--native", action="store_true",
                        help="sample C frames too (pauses the gateway at each sample: slower, but shows "
                             "what the event loop's C code does)")
    args = parser.parse_args()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    fake = FakeOpenAI(default=Reply(text=STREAM_TEXT, chunks=20)).start()
    results: dict[str, tuple[float, float, int, Path]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with ep_serve(fake, work) as subject:
            pid, url, model = subject.pid, subject.url, subject.model
            for stream in (False, True):
                mode = "stream" if stream else "json"
                raw = (HERE / f"profile_{mode}.raw.txt") if args.keep_raw else work / f"{mode}.raw.txt"
                body = {"model": model, "messages": [{"role": "user", "content": "benchmark"}], "stream": stream}
                rps, cpu_ms, errors = profile_mode(pid, url, body, "bench-key", args.duration, raw, args.native)
                results[mode] = (rps, cpu_ms, errors, raw)
                print(f"{mode}: {rps:.0f} RPS {cpu_ms:.3f} ms CPU/req", flush=True)
        text = report(args.title, results)
    fake.stop()
    (HERE / args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
