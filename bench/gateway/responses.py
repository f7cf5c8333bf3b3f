"""The cost of ``/v1/responses`` next to ``/v1/chat/completions`` on the same ``ep serve``.

    .venv/bin/python bench/gateway/responses.py [--duration 5] [--connections 1,16]

Same set-up as ``run.py`` (whose helpers it uses): one ``ep serve`` pinned to one core in front of the
fake OpenAI upstream (chat completions), ``wrk`` on the other core. Both surfaces ask for the same
answer; the Responses cases differ only in the surface's codec and, with ``store``, one row written
to the ``responses`` table per request. Writes ``results_responses.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import LOAD_CPU, STREAM_TEXT, FakeOpenAI, Reply, Result, ep_serve, measure  # noqa: E402

CASES = [  # (label, path, body without model/stream)
    ("chat/completions", "/v1/chat/completions", {"messages": [{"role": "user", "content": "benchmark"}]}),
    ("responses store=false", "/v1/responses", {"input": "benchmark", "store": False}),
    ("responses store=true", "/v1/responses", {"input": "benchmark", "store": True}),
]


def table(results: list[Result]) -> str:
    head = "| surface | mode | conns | req/s | p50 ms | p99 ms | CPU ms/req | errors |\n|---|---|---|---|---|---|---|---|"
    rows = [f"| {r.subject} | {r.mode} | {r.connections} | {r.rps} | {r.p50_ms} | {r.p99_ms} | "
            f"{r.cpu_ms_per_request} | {r.errors} |" for r in results]
    return "\n".join([head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", default="1,16")
    args = parser.parse_args()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    fake = FakeOpenAI(default=Reply(text=STREAM_TEXT, chunks=20)).start()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp, ep_serve(fake, Path(tmp)) as (pid, chat_url, model):
        base = chat_url.removesuffix("/v1/chat/completions")
        for stream in (False, True):
            for label, path, body in CASES:
                if stream and "store=true" in label:
                    continue
                for conns in (int(c) for c in args.connections.split(",")):
                    result = measure(label, pid, base + path, {"model": model, **body, "stream": stream},
                                     "stream" if stream else "json", conns, args.duration, "bench-key")
                    results.append(result)
                    print(json.dumps(asdict(result)), flush=True)
    fake.stop()
    (HERE / "results_responses.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
