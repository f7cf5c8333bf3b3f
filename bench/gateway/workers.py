"""Does ``ep serve --workers 2`` serve twice what one worker does? One run, same placement for both.

    .venv/bin/python bench/gateway/workers.py [--duration 8] [--connections 32] [--workers 1,2]

On a machine with as many cores as workers there is no spare core for the load generator and the
upstream, so nothing is pinned (pinning ``ep`` to one core would decide the answer) and both are made
as cheap as they go: the upstream is nginx answering every chat completion with a canned body from
memory (``return 200``), and ``wrk`` runs one thread. Per worker count the run reports requests/s, the
CPU milliseconds per request of the ``ep`` process tree, how the requests split over the workers
(CPU seconds per worker, since keep-alive connections stay with the worker that accepted them), and
the CPU the load generator and upstream took, which is what the workers could not have. ``ideal`` is
the RPS the workers would reach on the cores left to them (at most one each) at one worker's CPU per
request.
Results go to ``workers.md`` beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "bench"))

from run import parse_wrk, wrk_lua  # noqa: E402
from serving import TICKS, free_port, nginx_config, tree, tree_cpu_ticks, wait_http  # noqa: E402

CANNED = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1715367049, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the canned upstream."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}


def machine_busy_ticks() -> int:
    """All CPUs' non-idle ticks since boot (the whole machine: other tenants show up here too)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


@contextlib.contextmanager
def canned_upstream(work: Path) -> Iterator[tuple[int, str]]:
    port = free_port()
    body = json.dumps(CANNED).replace("'", "\\'")
    conf = nginx_config(work, f"""  server {{
    listen 127.0.0.1:{port};
    location /v1/chat/completions {{ default_type application/json; return 200 '{body}'; }}
    location / {{ default_type application/json; return 200 '{{"object": "list", "data": []}}'; }}
  }}""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        yield proc.pid, f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(15)


@contextlib.contextmanager
def ep(workers: int, upstream: str, work: Path, database_url: str | None = None) -> Iterator[tuple[int, str]]:
    port = free_port()
    env = {**os.environ, "EP_OPENAI_API_KEY": "bench", "EP_OPENAI_BASE_URL": upstream,
           "EP_DATABASE_URL": database_url or f"sqlite:///{work / 'ep.db'}"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        time.sleep(1.0)
        yield proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def run_one(workers: int, upstream_pid: int, upstream: str, work: Path, connections: int, duration: int,
            database_url: str | None = None) -> dict:
    with ep(workers, upstream, work, database_url) as (pid, url):
        script = wrk_lua({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "bench"}]},
                         "bench-key", {})
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
        subprocess.run([*cmd[:3], "-d2s", *cmd[4:]], capture_output=True, check=False)  # warm-up
        procs = [p for p in tree(pid) if p != pid] or [pid]
        before = {p: tree_cpu_ticks(p, descendants=False) for p in procs}
        ep_before, up_before, busy_before = tree_cpu_ticks(pid), tree_cpu_ticks(upstream_pid), machine_busy_ticks()
        started = time.monotonic()
        wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        out, _ = wrk.communicate()
        elapsed = time.monotonic() - started
        wrk_ticks = _children_ticks()
        ep_ticks = tree_cpu_ticks(pid) - ep_before
        per_worker = sorted((tree_cpu_ticks(p, descendants=False) - before[p]) / TICKS for p in procs)
        script.unlink()
    rps, p50, p99, requests, errors = parse_wrk(out)
    busy = (machine_busy_ticks() - busy_before) / TICKS
    up = (tree_cpu_ticks(upstream_pid) - up_before) / TICKS
    return {"workers": workers, "rps": round(rps, 1), "p50_ms": p50, "p99_ms": p99, "errors": errors,
            "ep_cpu_ms_per_request": round(ep_ticks / TICKS * 1000 / max(requests, 1), 4),
            "worker_cpu_s": [round(x, 2) for x in per_worker],
            "load_and_upstream_cpu_s": round(wrk_ticks + up, 2), "machine_busy_s": round(busy, 2),
            "seconds": round(elapsed, 2), "ep_cpu_s": round(ep_ticks / TICKS, 2)}


_last_children = [0.0]


def _children_ticks() -> float:
    """CPU seconds of reaped children (wrk) since the previous call."""
    usage = os.times()
    now = usage.children_user + usage.children_system
    spent, _last_children[0] = now - _last_children[0], now
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", default=str(HERE / "workers.md"))
    parser.add_argument("--postgres", action="store_true",
                        help="ledger on a private PostgreSQL (the scale-out set-up) instead of one SQLite file")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        upstream_pid, upstream = stack.enter_context(canned_upstream(Path(tmp)))
        database_url = None
        if args.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.servers import postgres_server

            database_url = stack.enter_context(postgres_server()).url
        for index, n in enumerate(int(x) for x in args.workers.split(",")):  # repeats alternate
            work = Path(tmp) / f"{index}-w{n}"
            work.mkdir()
            _children_ticks()
            rows.append(run_one(n, upstream_pid, upstream, work, args.connections, args.duration, database_url))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    lines = [f"`ep serve --workers N` on {cores} cores, nothing pinned; upstream: nginx returning a canned chat "
             f"completion; load: `wrk -t1 -c{args.connections} -d{args.duration}s` "
             f"(`python bench/gateway/workers.py --duration {args.duration} --connections {args.connections}"
             f"{' --postgres' if args.postgres else ''}`); ledger on "
             f"{'a private PostgreSQL' if args.postgres else 'one SQLite file'}.", "",
             "| workers | RPS | × one worker | p50 ms | p99 ms | ep CPU ms/req | CPU s per worker | wrk + upstream "
             "CPU s | machine busy s / wall s | ideal RPS |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        # the cores the workers could have (each worker at most one; wrk and the upstream take theirs),
        # at one worker's CPU per request
        cores_left = min(row["workers"], cores - row["load_and_upstream_cpu_s"] / row["seconds"])
        ideal = cores_left / (base["ep_cpu_ms_per_request"] / 1000)
        lines.append(f"| {row['workers']} | {row['rps']} | {row['rps'] / base['rps']:.2f} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['ep_cpu_ms_per_request']} | {row['worker_cpu_s']} | "
                     f"{row['load_and_upstream_cpu_s']} | {row['machine_busy_s']} / {row['seconds']} | {ideal:.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
