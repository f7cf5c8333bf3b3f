"""The local model: engine load time, time to first token, tokens/s and memory, and the gateway's overhead.

Starts the engine (the same supervised child process the gateway uses) and a keyless gateway in this
process (uvicorn in a thread), then streams the same request straight to the engine and through the
gateway's ``/v1/chat/completions``, at 1 and at 4 concurrent requests. Every request generates exactly
``--tokens`` tokens (``ignore_eos``), so the rows compare like with like.

Reported per row: time to first token (median), decode speed per request (tokens after the first,
divided by the time after the first), aggregate tokens/s across the concurrent requests, total latency
(median) and the engine's resident memory after the row. "overhead" is gateway minus direct for the
medians, on the same engine.

    python bench/local.py [--rounds 5] [--tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from tests.gateway.server import GatewayServer

from execution_platform.config.settings import Settings
from execution_platform.gateway.app import create_app
from execution_platform.providers.local import engine_config
from execution_platform.providers.local_supervisor import EngineConfig, EngineSupervisor, shared_supervisor
from execution_platform.storage.keys import MemoryKeyStore

PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one(session: aiohttp.ClientSession, url: str, tokens: int) -> tuple[float, float, int]:
    """(time to first token, total time, completion tokens) of one streamed request."""
    body = {"model": "local", "messages": PROMPT, "max_tokens": tokens, "stream": True, "ignore_eos": True,
            "temperature": 0.7, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    first = None
    count = 0
    async with session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        async for raw in resp.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                if first is None and (choice.get("delta") or {}).get("content"):
                    first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first if first is not None else total, total, count


async def rows(urls: dict[str, str], concurrency: int, rounds: int, tokens: int) -> dict[str, dict[str, float]]:
    """One row per path; the paths alternate round by round, so drifting machine load hits both alike."""
    samples: dict[str, dict[str, list[float]]] = {
        path: {"ttft": [], "total": [], "speed": [], "aggregate": []} for path in urls
    }
    # A new connection per request on both paths: the engine's server may drop a kept-alive connection.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600), connector=connector) as session:
        for url in urls.values():
            await one(session, url, 4)  # warm each path (prompt cache, first-use costs) outside the figures
        for _ in range(rounds):
            for path, url in urls.items():
                got = samples[path]
                started = time.perf_counter()
                results = await asyncio.gather(*(one(session, url, tokens) for _ in range(concurrency)))
                got["aggregate"].append(sum(n for _, _, n in results) / (time.perf_counter() - started))
                for first, total, n in results:
                    got["ttft"].append(first)
                    got["total"].append(total)
                    if n > 1 and total > first:
                        got["speed"].append((n - 1) / (total - first))
    med = statistics.median
    return {path: {"ttft_ms": med(g["ttft"]) * 1000, "tok_s": med(g["speed"]), "agg_tok_s": med(g["aggregate"]),
                   "total_ms": med(g["total"]) * 1000} for path, g in samples.items()}


def load_time(config: EngineConfig, runs: int = 3) -> list[float]:
    times = []
    for _ in range(runs):
        sup = EngineSupervisor(config)
        start = time.perf_counter()
        sup.url()
        times.append(time.perf_counter() - start)
        sup.stop()
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()

    db = Path(tempfile.mkdtemp(prefix="ep-bench-local-")) / "ep.db"
    settings = Settings(_env_file=None, openai_api_key=None, anthropic_api_key=None, gemini_api_key=None,
                        config=None, master_key=None, redis_url=None, database_url=f"sqlite:///{db}")
    config = engine_config(settings)
    loads = await asyncio.to_thread(load_time, config)
    print(f"engine load (spawn to serving, {len(loads)} runs): "
          + ", ".join(f"{t:.2f}s" for t in loads) + f"  | threads={config.threads or 'all cores'} "
          f"ctx={config.ctx} parallel={config.parallel} model={config.model_name()}")

    server = GatewayServer(create_app(settings, key_store=MemoryKeyStore())).start()
    sup = shared_supervisor(config)
    try:
        direct_base = await asyncio.to_thread(sup.url)
        print(f"engine RSS after start: {rss_mb(sup.pid):.0f} MB")
        urls = {"direct": direct_base + "/chat/completions", "gateway": server.url + "/v1/chat/completions"}
        print(f"\n{'path':8} {'conc':>4} {'TTFT ms':>9} {'tok/s/req':>10} {'agg tok/s':>10} {'total ms':>9} {'RSS MB':>7}")
        results: dict[tuple[str, int], dict[str, float]] = {}
        for concurrency in (1, 4):
            for path, r in (await rows(urls, concurrency, args.rounds, args.tokens)).items():
                results[(path, concurrency)] = r
                print(f"{path:8} {concurrency:>4} {r['ttft_ms']:>9.1f} {r['tok_s']:>10.1f} {r['agg_tok_s']:>10.1f} "
                      f"{r['total_ms']:>9.1f} {rss_mb(sup.pid):>7.0f}")
        print()
        for concurrency in (1, 4):
            d, g = results[("direct", concurrency)], results[("gateway", concurrency)]
            print(f"gateway overhead at {concurrency}: TTFT {g['ttft_ms'] - d['ttft_ms']:+.1f} ms, "
                  f"total {g['total_ms'] - d['total_ms']:+.1f} ms (median of {args.rounds * concurrency})")
    finally:
        server.stop()
        sup.release()
        sup.stop()


if __name__ == "__main__":
    asyncio.run(main())
