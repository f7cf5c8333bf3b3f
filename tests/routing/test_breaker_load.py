"""200 concurrent requests to a persona whose first target always answers 503.

All of them succeed via the second target; once the breaker is open the dead target costs a fast
skip, so the persona's latency is close to that of a persona whose first target is healthy (the
precise overhead is measured by ``bench/breaker.py``).
"""

from __future__ import annotations

import asyncio
import statistics
import textwrap
import time
from collections.abc import Iterator

import pytest

from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.model import ChatRequest
from execution_platform.routing import Router
from tests.fakes.openai import FakeOpenAI
from tests.fakes.script import Fault


@pytest.fixture
def sick() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(default=Fault("status", status=503, message="unavailable")).start()
    yield fake
    fake.stop()


def router_for(sick: FakeOpenAI, healthy: FakeOpenAI) -> Router:
    yaml = f"""
    providers:
      openai: {{api_key: {healthy.api_key}, base_url: '{healthy.base_url}'}}
    routing:
      retry: {{max_attempts: 2, backoff_base: 0.005, backoff_max: 0.01}}
      breaker: {{failure_threshold: 5, cooldown: 300}}
    deployments:
      - {{name: sick, provider: openai, model: gpt-4o-mini, base_url: '{sick.base_url}', api_key: {sick.api_key}}}
    personas:
      broken: {{targets: [sick, openai/gpt-4o-mini]}}
      healthy: {{targets: [openai/gpt-4o-mini]}}
    """
    return Router(parse_config(textwrap.dedent(yaml)), Settings(_env_file=None))


async def timed(router: Router, persona: str) -> tuple[float, str]:
    request = ChatRequest.model_validate({"model": f"persona:{persona}", "messages": [{"role": "user", "content": "hi"}]})
    started = time.perf_counter()
    provider, resolved = router.resolve(request)
    response = await provider.chat(resolved)
    return time.perf_counter() - started, response.attempts[-1].deployment or response.attempts[-1].provider


async def test_200_concurrent_all_succeed_and_open_breaker_costs_little(sick: FakeOpenAI, fake_openai: FakeOpenAI) -> None:
    router = router_for(sick, fake_openai)
    first = await asyncio.gather(*(timed(router, "broken") for _ in range(200)))
    assert all(served == "openai" for _, served in first)  # every request served by the second target
    breaker = router.breaker("sick")
    assert breaker is not None and breaker.state == "open"
    calls_to_sick = len(sick.requests)
    assert calls_to_sick < 400  # at most the first wave (with its retries) reached the dead upstream

    second = await asyncio.gather(*(timed(router, "broken") for _ in range(200)))
    assert all(served == "openai" for _, served in second)
    assert len(sick.requests) == calls_to_sick  # open breaker: no more calls to the dead upstream

    broken, healthy = [], []
    for _ in range(60):  # interleaved, one at a time, so both see the same machine load
        broken.append((await timed(router, "broken"))[0])
        healthy.append((await timed(router, "healthy"))[0])
    overhead_ms = (statistics.median(broken) - statistics.median(healthy)) * 1000
    assert overhead_ms < 10, f"open-breaker skip costs {overhead_ms:.2f} ms at p50"
