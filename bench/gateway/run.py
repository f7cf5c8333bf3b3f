"""Gateway benchmark: the fake upstream directly, nginx, the LiteLLM proxy and ``ep serve``, one run.

    .venv/bin/python bench/gateway/run.py [--duration 10] [--connections 1,16,64] [--setup-litellm]

Every subject fronts the same fake OpenAI upstream. Load comes from ``wrk`` (not Python), pinned to a
different core than the subject (``taskset``). Per case it reports requests/s, p50/p99 latency and
the subject's CPU milliseconds per request, read from /proc for its whole process tree, as JSON lines
(``results.jsonl``) and a markdown table (``results.md``), both beside this file.

Needs ``wrk`` and ``nginx`` (Debian packages ``wrk`` and ``nginx-light``); LiteLLM runs from its own
virtual environment (``--setup-litellm`` creates it with ``litellm[proxy]``); missing subjects are
skipped with a note, never faked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tests.fakes import Reply  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SUBJECT_CPU, LOAD_CPU = "0", "1"
LITELLM_VENV = HERE / ".litellm-venv"
LITELLM_KEY = "sk-bench-" + "0" * 32  # LiteLLM refuses to start without a master key
STREAM_TEXT = " ".join(f"w{i:02d}" for i in range(20))  # 20 chunks of text


@dataclass
class Result:
    subject: str
    mode: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    requests: int
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def tree_cpu_ticks(pid: int) -> int:
    """utime+stime of ``pid`` and all its descendants (live ones; workers outlive the measurement).

    The bench process itself (the fake, for the ``direct`` floor) is counted alone: its children
    are the load generator."""
    children: dict[int, list[int]] = {}
    stats: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
        children.setdefault(ppid, []).append(int(entry))
        stats[int(entry)] = utime + stime
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += stats.get(current, 0)
        if pid != os.getpid():
            stack.extend(children.get(current, []))
    return total


def wrk_lua(body: dict, key: str) -> Path:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        f'wrk.body = "{payload}"\n'
    )
    return script


def parse_wrk(text: str) -> tuple[float, float, float, int, int]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        match = re.search(pattern, text)
        if match:
            errors += sum(int(g) for g in match.groups())
    return rps, p50, p99, requests, errors


def measure(
    subject: str, pid: int, url: str, body: dict, mode: str, connections: int, duration: int, key: str
) -> Result:
    script = wrk_lua(body, key)
    threads = 1 if connections < 4 else 2
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
           "--latency", "-s", str(script), url]
    subprocess.run([*cmd[:5], "-d2s", *cmd[6:]], capture_output=True, check=False)  # warm-up
    before = tree_cpu_ticks(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if parse_wrk(out)[4]:
        print(out, file=sys.stderr)  # which errors: socket (connect/read/write/timeout) or non-2xx
    used_ms = (tree_cpu_ticks(pid) - before) * 1000 / TICKS
    script.unlink()
    rps, p50, p99, requests, errors = parse_wrk(out)
    return Result(subject, mode, connections, round(rps, 1), round(p50, 3), round(p99, 3),
                  round(used_ms / max(requests, 1), 4), requests, errors)


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(["taskset", "-c", SUBJECT_CPU, *cmd], env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def ep_serve(fake: FakeOpenAI, work: Path) -> Iterator[tuple[int, str, str]]:
    port = free_port()
    env = {"EP_OPENAI_API_KEY": fake.api_key, "EP_OPENAI_BASE_URL": fake.base_url,
           "EP_DATABASE_URL": f"sqlite:///{work / 'ep.db'}"}
    with process([str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port)], env, work) as proc:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "openai/gpt-4o-mini"


@contextlib.contextmanager
def nginx(fake: FakeOpenAI, work: Path) -> Iterator[tuple[int, str, str]]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  upstream fake {{ server 127.0.0.1:{fake.port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer {fake.api_key}";
      proxy_buffering off;
    }}
  }}
}}
""")
    with process(["nginx", "-c", str(conf), "-p", str(work)]) as proc:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        yield proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini"


@contextlib.contextmanager
def litellm(fake: FakeOpenAI, work: Path) -> Iterator[tuple[int, str, str]]:
    port = free_port()
    conf = work / "litellm.yaml"
    conf.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        f"    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{fake.base_url}', api_key: '{fake.api_key}'}}\n"
    )
    binary = LITELLM_VENV / "bin" / "litellm"
    env = {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True",
           "LITELLM_MASTER_KEY": LITELLM_KEY}
    env.pop("DATABASE_URL", None)
    with process([str(binary), "--config", str(conf), "--port", str(port), "--num_workers", "1"], env, work) as proc:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
        yield proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini"


def setup_litellm() -> None:
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)


def table(results: list[Result]) -> str:
    lines = ["| subject | mode | conns | RPS | p50 ms | p99 ms | CPU ms/req | errors |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.subject} | {r.mode} | {r.connections} | {r.rps} | {r.p50_ms} | {r.p99_ms} | "
              f"{r.cpu_ms_per_request} | {r.errors} |" for r in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--subjects", default="direct,nginx,litellm,ep")
    parser.add_argument("--setup-litellm", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    if args.setup_litellm:
        setup_litellm()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # wrk cuts connections at the end of a run
    os.sched_setaffinity(0, {int(LOAD_CPU)})  # the fake upstream shares the load generator's core
    fake = FakeOpenAI(default=Reply(text=STREAM_TEXT, chunks=20)).start()
    connections = [int(c) for c in args.connections.split(",")]
    results: list[Result] = []
    subjects = {"direct": None, "nginx": nginx, "litellm": litellm, "ep": ep_serve}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.subjects.split(","):
            if name == "nginx" and shutil.which("nginx") is None:
                print("skip nginx: not installed (apt-get install nginx-light)", file=sys.stderr)
                continue
            if name == "litellm" and not (LITELLM_VENV / "bin" / "litellm").exists():
                print("skip litellm: run with --setup-litellm once", file=sys.stderr)
                continue
            work = Path(tmp) / name
            work.mkdir()
            factory = subjects[name]
            context = (contextlib.nullcontext((os.getpid(), fake.base_url + "/chat/completions", "gpt-4o-mini"))
                       if factory is None else factory(fake, work))
            with context as (pid, url, model):
                for stream in (False, True):
                    body = {"model": model, "messages": [{"role": "user", "content": "benchmark"}], "stream": stream}
                    for conns in connections:
                        key = {"direct": fake.api_key, "litellm": LITELLM_KEY}.get(name, "bench-key")
                        result = measure(name, pid, url, body, "stream" if stream else "json", conns,
                                         args.duration, key)
                        results.append(result)
                        print(json.dumps(asdict(result)), flush=True)
    fake.stop()
    with (HERE / "results.jsonl").open("w") as out:
        for result in results:
            out.write(json.dumps(asdict(result)) + "\n")
    (HERE / "results.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
