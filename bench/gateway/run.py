"""Gateway benchmark: the fake upstream directly, nginx, the Portkey gateway, the LiteLLM proxy and
``ep serve``, one run.

    .venv/bin/python bench/gateway/run.py [--duration 10] [--connections 1,16,64] [--setup-litellm]
                                          [--setup-portkey] [--subjects direct,nginx,portkey,litellm,ep]

Every subject fronts the same fake OpenAI upstream. Load comes from ``wrk`` (not Python), pinned to a
different core than the subject (``taskset``). Per case it reports requests/s, p50/p99 latency and
the subject's CPU milliseconds per request, read from /proc for its whole process tree, and per
subject its idle RSS (whole process tree, read after start-up and before any load), as JSON lines
(``results.jsonl``) and a markdown table (``results.md``) that ends with the ratios issue 14 asks
for (ep's CPU per request over nginx's, ep's RPS over Portkey's and LiteLLM's), both beside this file.

Needs ``wrk`` and ``nginx`` (Debian packages ``wrk`` and ``nginx-light``). LiteLLM runs from its own
virtual environment (``--setup-litellm`` creates it with ``litellm[proxy]``); Portkey's gateway runs
with ``node`` from a private npm prefix (``--setup-portkey`` installs ``@portkey-ai/gateway`` there),
offline, routed per request to the fake by its ``x-portkey-provider: openai`` and
``x-portkey-custom-host`` headers. Missing subjects are skipped with a note, never faked.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serving import TICKS, free_port, nginx_config, tree_cpu_ticks, tree_rss_mb, wait_http  # noqa: E402
from tests.fakes import Reply  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

SUBJECT_CPU, LOAD_CPU = "0", "1"
LITELLM_VENV = HERE / ".litellm-venv"
PORTKEY_DIR = HERE / ".portkey"  # a private npm prefix, git-ignored
PORTKEY_PACKAGE = "@portkey-ai/gateway@1.15.2"
PORTKEY_SERVER = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
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
    idle_rss_mb: float


def wrk_lua(body: dict, key: str, headers: dict[str, str]) -> Path:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    extra = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        f"{extra}"
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


def measure(subject: str, pid: int, url: str, body: dict, mode: str, connections: int, duration: int, key: str,
            headers: dict[str, str], idle_rss: float) -> Result:
    script = wrk_lua(body, key, headers)
    threads = 1 if connections < 4 else 2
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
           "--latency", "-s", str(script), url]
    subprocess.run([*cmd[:5], "-d2s", *cmd[6:]], capture_output=True, check=False)  # warm-up
    alone = pid == os.getpid()  # the fake in this process, for the ``direct`` floor: its children are wrk
    before = tree_cpu_ticks(pid, descendants=not alone)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if parse_wrk(out)[4]:
        print(out, file=sys.stderr)  # which errors: socket (connect/read/write/timeout) or non-2xx
    used_ms = (tree_cpu_ticks(pid, descendants=not alone) - before) * 1000 / TICKS
    script.unlink()
    rps, p50, p99, requests, errors = parse_wrk(out)
    return Result(subject, mode, connections, round(rps, 1), round(p50, 3), round(p99, 3),
                  round(used_ms / max(requests, 1), 4), requests, errors, round(idle_rss, 1))


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


@dataclass
class Subject:
    """A started gateway: where to send load and how to address the fake behind it."""

    pid: int
    url: str
    model: str
    key: str = "bench-key"
    headers: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def ep_serve(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
    port = free_port()
    env = {"EP_OPENAI_API_KEY": fake.api_key, "EP_OPENAI_BASE_URL": fake.base_url,
           "EP_DATABASE_URL": f"sqlite:///{work / 'ep.db'}"}
    with process([str(Path(sys.executable).parent / "ep"), "serve", "--port", str(port)], env, work) as proc:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield Subject(proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "openai/gpt-4o-mini")


@contextlib.contextmanager
def ep_granian(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
    """The same app under granian (Rust HTTP server, one worker, one runtime thread) instead of uvicorn:
    the server comparison in ``servers.md``. Needs ``pip install granian`` in this environment."""
    port = free_port()
    env = {"EP_OPENAI_API_KEY": fake.api_key, "EP_OPENAI_BASE_URL": fake.base_url,
           "EP_DATABASE_URL": f"sqlite:///{work / 'ep.db'}", "EP_LOG_FORMAT": "json"}
    cmd = [str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--factory", "--loop", "uvloop",
           "--workers", "1", "--runtime-threads", "1", "--no-ws", "--log-level", "warning", "--port", str(port),
           "execution_platform.gateway.app:create_app_from_env"]
    with process(cmd, env, work) as proc:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield Subject(proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "openai/gpt-4o-mini")


@contextlib.contextmanager
def nginx(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
    port = free_port()
    conf = nginx_config(work, f"""  upstream fake {{ server 127.0.0.1:{fake.port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer {fake.api_key}";
      proxy_buffering off;
    }}
  }}""")
    with process(["nginx", "-c", str(conf), "-p", str(work)]) as proc:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        yield Subject(proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini")


@contextlib.contextmanager
def portkey(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
    """Portkey's open-source gateway (Node, Hono) as its README runs it, without the console UI."""
    port = free_port()
    env = {"NODE_ENV": "production"}  # no log-streaming console routes
    with process(["node", str(PORTKEY_SERVER), f"--port={port}", "--headless"], env, work) as proc:
        wait_http(f"http://127.0.0.1:{port}/")
        yield Subject(proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini", fake.api_key,
                      {"x-portkey-provider": "openai", "x-portkey-custom-host": fake.base_url})


@contextlib.contextmanager
def litellm(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
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
        yield Subject(proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini", LITELLM_KEY)


@contextlib.contextmanager
def direct(fake: FakeOpenAI, work: Path) -> Iterator[Subject]:
    yield Subject(os.getpid(), fake.base_url + "/chat/completions", "gpt-4o-mini", fake.api_key)


def setup_litellm() -> None:
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)


def setup_portkey() -> None:
    if not PORTKEY_SERVER.exists():
        if shutil.which("npm") is None:
            sys.exit("npm not found: apt-get install npm")
        PORTKEY_DIR.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PORTKEY_DIR), PORTKEY_PACKAGE],
                       check=True)


def missing(name: str) -> str | None:
    """Why a subject cannot run here, or None."""
    if name == "nginx" and shutil.which("nginx") is None:
        return "not installed (apt-get install nginx-light)"
    if name == "litellm" and not (LITELLM_VENV / "bin" / "litellm").exists():
        return "run with --setup-litellm once"
    if name == "ep-granian" and not (Path(sys.executable).parent / "granian").exists():
        return "pip install granian in this environment"
    if name == "portkey" and (shutil.which("node") is None or not PORTKEY_SERVER.exists()):
        return "needs node and --setup-portkey once"
    return None


def table(results: list[Result]) -> str:
    lines = ["| subject | mode | conns | RPS | p50 ms | p99 ms | CPU ms/req | errors | idle RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.subject} | {r.mode} | {r.connections} | {r.rps} | {r.p50_ms} | {r.p99_ms} | "
              f"{r.cpu_ms_per_request} | {r.errors} | {r.idle_rss_mb if r.subject != 'direct' else '–'} |"
              for r in results]
    return "\n".join(lines)


def ratios(results: list[Result]) -> str:
    """The issue's ratios, per connection count, from this one run (absent subjects give no line)."""
    by = {(r.subject, r.mode, r.connections): r for r in results}
    lines = ["| ratio (same run) | conns | value | acceptance |", "|---|---|---|---|"]
    for conns in sorted({r.connections for r in results}):
        def get(subject: str, mode: str, conns: int = conns) -> Result | None:
            return by.get((subject, mode, conns))

        for mode, bound in (("json", "≤ 8"), ("stream", "≤ 4")):
            ep, floor = get("ep", mode), get("nginx", mode)
            if ep and floor and floor.cpu_ms_per_request:
                lines.append(f"| ep CPU/req ÷ nginx CPU/req, {mode} | {conns} | "
                             f"{ep.cpu_ms_per_request / floor.cpu_ms_per_request:.1f}× | {bound} |")
        for peer, bound in (("portkey", "≥ 3"), ("litellm", "≥ 25")):
            for mode in ("json", "stream"):
                ep, other = get("ep", mode), get(peer, mode)
                if not (ep and other and other.rps):
                    continue
                value = (f"{ep.rps / other.rps:.1f}×" if not other.errors
                         else f"n/a: {peer} answered {other.errors} of {other.requests} with errors")
                lines.append(f"| ep RPS ÷ {peer} RPS, {mode} | {conns} | {value} | {bound if mode == 'json' else '–'} |")
    ep_rss = next((r.idle_rss_mb for r in results if r.subject == "ep"), None)
    if ep_rss is not None:
        lines.append(f"| ep idle RSS MB | – | {ep_rss} | ≤ 80 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--subjects", default="direct,nginx,portkey,litellm,ep")
    parser.add_argument("--setup-litellm", action="store_true")
    parser.add_argument("--setup-portkey", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    if args.setup_litellm:
        setup_litellm()
    if args.setup_portkey:
        setup_portkey()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # wrk cuts connections at the end of a run
    os.sched_setaffinity(0, {int(LOAD_CPU)})  # the fake upstream shares the load generator's core
    fake = FakeOpenAI(default=Reply(text=STREAM_TEXT, chunks=20)).start()
    connections = [int(c) for c in args.connections.split(",")]
    results: list[Result] = []
    subjects = {"direct": direct, "nginx": nginx, "portkey": portkey, "litellm": litellm, "ep": ep_serve,
                "ep-granian": ep_granian}
    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(args.subjects.split(",")):  # a subject may be named twice: alternation
            if (why := missing(name)) is not None:
                print(f"skip {name}: {why}", file=sys.stderr)
                continue
            work = Path(tmp) / f"{index}-{name}"
            work.mkdir()
            with subjects[name](fake, work) as subject:
                time.sleep(1.0)  # let start-up finish settling before reading idle memory
                idle_rss = tree_rss_mb(subject.pid) if name != "direct" else 0.0
                for stream in (False, True):
                    body = {"model": subject.model, "messages": [{"role": "user", "content": "benchmark"}],
                            "stream": stream}
                    for conns in connections:
                        result = measure(name, subject.pid, subject.url, body, "stream" if stream else "json",
                                         conns, args.duration, subject.key, subject.headers, idle_rss)
                        results.append(result)
                        print(json.dumps(asdict(result)), flush=True)
                fake.reset()  # the fake records every request: keep its memory (and the machine's) flat
    fake.stop()
    with (HERE / "results.jsonl").open("w") as out:
        for result in results:
            out.write(json.dumps(asdict(result)) + "\n")
    report = table(results) + "\n\n" + ratios(results) + "\n"
    (HERE / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
