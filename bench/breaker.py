"""What an open circuit breaker costs: p50 latency of a persona whose first target is dead (503, breaker
open) against a persona whose first target is healthy.

Two measurements:

* ``http``: both personas end on the same healthy fake OpenAI upstream (run in a child process, so the
  fake's work does not share this interpreter). Requests alternate between the two personas one at a
  time, so both see the same machine load; then the same in waves of 200 concurrent requests.
* ``in-process``: the same stacks over an instant in-memory provider, isolating the routing layers'
  own cost (the skip: breaker check, skipped-attempt record, moving to the next target).

Usage::

    python bench/breaker.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from execution_platform.config.file import parse_config  # noqa: E402
from execution_platform.config.settings import Settings  # noqa: E402
from execution_platform.model import ChatRequest, ChatResponse, Message, StreamEvent  # noqa: E402
from execution_platform.providers.base import Provider  # noqa: E402
from execution_platform.routing import Router  # noqa: E402


def serve() -> None:
    """Child process: a healthy and an always-503 fake until stdin closes."""
    from tests.fakes.openai import FakeOpenAI
    from tests.fakes.script import Fault

    healthy = FakeOpenAI().start()
    sick = FakeOpenAI(default=Fault("status", status=503, message="unavailable")).start()
    for fake in (healthy, sick):
        fake.requests = _Discard()
    print(healthy.base_url, sick.base_url, flush=True)
    sys.stdin.read()
    healthy.stop()
    sick.stop()


class _Discard(list):
    def append(self, item: object) -> None:
        super().clear()
        super().append(item)


class Instant(Provider):
    """Answers at once (or fails at once), so only the routing layers are measured."""

    def __init__(self, fail: bool = False) -> None:
        self.name = "openai"
        self.fail = fail

    async def chat(self, request: ChatRequest) -> ChatResponse:
        if self.fail:
            from execution_platform.errors import UpstreamServerError

            raise UpstreamServerError("unavailable", upstream_status=503)
        return ChatResponse(id="x", model=request.model, message=Message(role="assistant", content="ok"))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError
        yield


def config_yaml(healthy: str, sick: str) -> str:
    return textwrap.dedent(f"""
    providers:
      openai: {{api_key: test-key, base_url: '{healthy}'}}
    routing:
      retry: {{max_attempts: 2, backoff_base: 0.001, backoff_max: 0.002}}
      breaker: {{failure_threshold: 5, cooldown: 3600}}
    deployments:
      - {{name: sick, provider: openai, model: gpt-4o-mini, base_url: '{sick}', api_key: test-key}}
    personas:
      broken: {{targets: [sick, openai/gpt-4o-mini]}}
      healthy: {{targets: [openai/gpt-4o-mini]}}
    """)


REQUEST = {"messages": [{"role": "user", "content": "hi"}]}


async def one(router: Router, persona: str) -> float:
    request = ChatRequest.model_validate({"model": f"persona:{persona}", **REQUEST})
    started = time.perf_counter()
    provider, resolved = router.resolve(request)
    response = await provider.chat(resolved)
    elapsed = time.perf_counter() - started
    assert response.attempts[-1].status == "ok"
    return elapsed


async def open_breaker(router: Router) -> None:
    for _ in range(10):
        await one(router, "broken")
    breaker = router.breaker("sick")
    assert breaker is not None and breaker.state == "open", "breaker did not open"


async def interleaved(router: Router, n: int) -> tuple[list[float], list[float]]:
    broken, healthy = [], []
    for _ in range(n):
        broken.append(await one(router, "broken"))
        healthy.append(await one(router, "healthy"))
    return broken, healthy


async def waves(router: Router, waves: int, size: int = 200) -> tuple[list[float], list[float]]:
    broken, healthy = [], []
    for _ in range(waves):
        broken += await asyncio.gather(*(one(router, "broken") for _ in range(size)))
        healthy += await asyncio.gather(*(one(router, "healthy") for _ in range(size)))
    return broken, healthy


def report(label: str, broken: list[float], healthy: list[float]) -> None:
    b, h = statistics.median(broken) * 1000, statistics.median(healthy) * 1000
    b90 = statistics.quantiles(broken, n=10)[-1] * 1000
    h90 = statistics.quantiles(healthy, n=10)[-1] * 1000
    print(f"{label:<34} p50 broken {b:8.3f} ms  healthy {h:8.3f} ms  overhead {b - h:+7.3f} ms"
          f"   (p90 {b90:.3f} / {h90:.3f})")


async def main(n: int) -> None:
    # in-process: the sick deployment fails instantly, the healthy target answers instantly
    sick_router = Router(
        parse_config(config_yaml("http://healthy/v1", "http://sick/v1")), Settings(_env_file=None),
        provider_factory=lambda name, **o: Instant(fail=o.get("base_url") == "http://sick/v1"),
    )
    await open_breaker(sick_router)
    await interleaved(sick_router, 500)  # warm up
    report("in-process, sequential", *(await interleaved(sick_router, n * 5)))

    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        healthy, sick = child.stdout.readline().split()
        router = Router(parse_config(config_yaml(healthy, sick)), Settings(_env_file=None))
        await open_breaker(router)
        await interleaved(router, 200)  # warm up connections
        report("http fake, sequential", *(await interleaved(router, n)))
        report("http fake, 200 concurrent waves", *(await waves(router, max(1, n // 200))))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        from execution_platform.providers.http import shared_client

        await shared_client().aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
    else:
        asyncio.run(main(args.requests))
