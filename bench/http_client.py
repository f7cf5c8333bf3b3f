"""CPU per request and requests per second: aiohttp vs httpx (and httpx2 when installed) as the upstream client,
and the providers' own HTTP/1.1 client for chat calls (``providers.http.H1Pool``).

The gateway sits on every model call, so the HTTP client's own CPU cost matters more than its API.
The fake OpenAI server runs in a separate process, so ``time.process_time`` here counts only the
client's work. Scenarios: a non-streamed chat completion and a 20-chunk SSE stream, each sequential and
16 concurrent. Usage::

    python bench/http_client.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something."}]})
STREAM_BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something."}], "stream": True}
)
HEADERS = {"authorization": "Bearer test-key", "content-type": "application/json"}

Fetch = Callable[[bool], Awaitable[int]]


def serve() -> None:
    """Child process: run the fake until stdin closes, answering with a 20-chunk reply."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes.openai import FakeOpenAI
    from tests.fakes.script import Reply

    fake = FakeOpenAI(default=Reply(text="lorem ipsum dolor sit amet " * 8, chunks=20)).start()
    fake.requests = _Discard()  # do not let the recording grow over thousands of calls
    print(fake.base_url, flush=True)
    sys.stdin.read()
    fake.stop()


class _Discard(list):
    def append(self, item: object) -> None:
        super().clear()
        super().append(item)


async def aiohttp_client(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    url = base + "/chat/completions"

    async def fetch(stream: bool) -> int:
        async with session.post(url, data=STREAM_BODY if stream else BODY, headers=HEADERS) as resp:
            if not stream:
                return len(await resp.read())
            size = 0
            async for chunk in resp.content.iter_any():
                size += len(chunk)
            return size

    return fetch, session.close


async def h1_client(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    from multidict import CIMultiDict

    from execution_platform.providers.http import H1Pool, Target

    pool = H1Pool(asyncio.get_running_loop())
    target = Target(base + "/chat/completions", CIMultiDict(HEADERS))

    async def fetch(stream: bool) -> int:
        resp = await pool.post(target, STREAM_BODY if stream else BODY, connect_timeout=10)
        if not stream:
            return len(await resp.read())
        size = 0
        while chunk := await resp.readany():
            size += len(chunk)
        resp.release()
        return size

    return fetch, pool.aclose


async def httpx_like_client(module: str, base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    httpx = importlib.import_module(module)
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))
    url = base + "/chat/completions"

    async def fetch(stream: bool) -> int:
        if not stream:
            resp = await client.post(url, content=BODY, headers=HEADERS)
            return len(resp.content)
        size = 0
        async with client.stream("POST", url, content=STREAM_BODY, headers=HEADERS) as resp:
            async for chunk in resp.aiter_raw():
                size += len(chunk)
        return size

    return fetch, client.aclose


async def run(fetch: Fetch, stream: bool, total: int, concurrency: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for ``total`` requests at ``concurrency``."""
    for _ in range(20):  # warm the pool
        await fetch(stream)
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await fetch(stream) <= 0:
                raise RuntimeError("empty answer")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def main(total: int) -> None:
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdin is not None
    base = child.stdout.readline().strip()
    clients: dict[str, Callable[[], Awaitable[tuple[Fetch, Callable[[], Awaitable[None]]]]]] = {
        "aiohttp": lambda: aiohttp_client(base),
        "providers h1": lambda: h1_client(base),
        "httpx": lambda: httpx_like_client("httpx", base),
    }
    if importlib.util.find_spec("httpx2"):
        clients["httpx2"] = lambda: httpx_like_client("httpx2", base)
    rows = []
    try:
        for scenario, stream in (("POST", False), ("stream 20 chunks", True)):
            for concurrency in (1, 16):
                for name, make in clients.items():
                    fetch, close = await make()
                    wall, cpu = await run(fetch, stream, total, concurrency)
                    await close()
                    rows.append((name, scenario, concurrency, total / wall, cpu / total * 1000))
    finally:
        child.stdin.close()
        child.wait(10)
    print(f"\n{total} requests per row; CPU is the client process only (the fake runs in a child process).\n")
    print("| client | scenario | concurrency | req/s | client CPU ms/req |")
    print("|---|---|---:|---:|---:|")
    for name, scenario, concurrency, rps, cpu_ms in rows:
        print(f"| {name} | {scenario} | {concurrency} | {rps:,.0f} | {cpu_ms:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
    else:
        asyncio.run(main(args.requests))
