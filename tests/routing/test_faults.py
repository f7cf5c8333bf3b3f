"""Fault injection over the real adapters and the wire-faithful fakes: each fault kind has a documented
outcome (retried on the same target, failed over to the next, or a clear error), with attempts recorded.

| fault                                  | outcome                                                     |
|----------------------------------------|-------------------------------------------------------------|
| 429 with Retry-After ≤ cap             | waits Retry-After, retried on the same target               |
| 429 with Retry-After > cap             | not waited for: next target at once                         |
| 500 / 529 once                         | retried on the same target (backoff with jitter)            |
| 503 on every try                       | target's retries exhausted, then the next target            |
| other 4xx (400)                        | final: no retry, no fallback                                |
| timeout before the first byte          | timeout_error, next target                                  |
| connection refused                     | connection_error, retried, then the next target             |
| disconnect before the first token      | retried / next target (nothing reached the caller)          |
| disconnect after the first token       | stream: StreamBrokenError, no switch; plain call: retried   |
"""

from __future__ import annotations

import time

import pytest

from execution_platform.errors import EPError, InvalidRequestError
from execution_platform.model import ChatRequest, ChatResponse, StreamAccumulator, TextDelta
from execution_platform.routing import StreamBrokenError, attempts_of
from tests.fakes.script import Fault, Reply

CHAIN = """
routing:
  retry: {max_attempts: 2, backoff_base: 0.01, backoff_max: 0.02, max_retry_after: 1}
  breaker: {failure_threshold: 100}
  timeouts: {first_token: 0.4, total: 10}
deployments:
  - {name: dead, provider: openai, model: gpt-4o-mini, base_url: 'http://127.0.0.1:9/v1', api_key: k}
personas:
  dev:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
  claude_first:
    targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o-mini]
  impatient:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
    retry: {max_attempts: 1}
  from_dead:
    targets: [dead, gemini/gemini-2.5-flash]
"""


def req(persona: str) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": f"persona:{persona}", "messages": [{"role": "user", "content": "hello"}]}
    )


async def call(router, persona: str, stream: bool) -> ChatResponse:
    provider, request = router.resolve(req(persona))
    if not stream:
        return await provider.chat(request)
    it = provider.stream(request)
    acc = StreamAccumulator()
    async for event in it:
        acc.add(event)
    response = acc.response()
    response.attempts = attempts_of(it)
    return response


def trail(response_or_error) -> list[tuple[str, str, str | None]]:
    return [(a.provider, a.status, a.error_type) for a in attempts_of(response_or_error)]


@pytest.fixture(params=[False, True], ids=["plain", "stream"])
def stream(request: pytest.FixtureRequest) -> bool:
    return request.param


async def test_429_with_retry_after_waits_and_retries_same_target(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=429, retry_after=0.3))
    started = time.monotonic()
    response = await call(make_router(CHAIN), "dev", stream)
    assert time.monotonic() - started >= 0.3
    assert trail(response) == [("openai", "error", "rate_limit_error"), ("openai", "ok", None)]
    assert fakes["anthropic"].requests == []


async def test_429_retry_after_beyond_cap_fails_over_at_once(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=429, retry_after=30))
    started = time.monotonic()
    response = await call(make_router(CHAIN), "dev", stream)
    assert time.monotonic() - started < 5
    assert trail(response) == [("openai", "error", "rate_limit_error"), ("anthropic", "ok", None)]


async def test_500_is_retried(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=500))
    response = await call(make_router(CHAIN), "dev", stream)
    assert trail(response) == [("openai", "error", "upstream_error"), ("openai", "ok", None)]
    assert response.message.text


async def test_503_every_time_fails_over_after_retries(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=503), Fault("status", status=503))
    response = await call(make_router(CHAIN), "dev", stream)
    assert [t[:2] for t in trail(response)] == [("openai", "error"), ("openai", "error"), ("anthropic", "ok")]
    assert response.provider == "anthropic"


async def test_529_overloaded_is_retried(make_router, fakes, stream) -> None:
    fakes["anthropic"].enqueue(Fault("status", status=529, error_type="overloaded_error"))
    response = await call(make_router(CHAIN), "claude_first", stream)
    assert trail(response) == [("anthropic", "error", "overloaded_error"), ("anthropic", "ok", None)]


async def test_400_is_final(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=400, message="bad parameter"))
    with pytest.raises(InvalidRequestError) as info:
        await call(make_router(CHAIN), "dev", stream)
    assert trail(info.value) == [("openai", "error", "invalid_request_error")]
    assert len(fakes["openai"].requests) == 1 and fakes["anthropic"].requests == []


async def test_timeout_before_first_byte_fails_over(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("slow_first_byte", delay=1.5, then=Reply()))
    started = time.monotonic()
    response = await call(make_router(CHAIN), "impatient", stream)
    assert time.monotonic() - started < 1.4
    assert trail(response) == [("openai", "error", "timeout_error"), ("anthropic", "ok", None)]


async def test_connection_refused_fails_over(make_router, fakes, stream) -> None:
    response = await call(make_router(CHAIN), "from_dead", stream)
    assert trail(response) == [
        ("openai", "error", "connection_error"), ("openai", "error", "connection_error"), ("gemini", "ok", None)
    ]
    assert attempts_of(response)[0].deployment == "dead"


async def test_disconnect_before_first_token_is_retried(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("disconnect", after_chunks=0, then=Reply()))
    response = await call(make_router(CHAIN), "dev", stream)
    assert trail(response) == [("openai", "error", "connection_error"), ("openai", "ok", None)]


async def test_disconnect_after_first_token(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("disconnect", after_chunks=3, then=Reply(text="one two three four", chunks=4)))
    router = make_router(CHAIN)
    if not stream:  # nothing reached the caller yet: a plain call is simply retried
        response = await call(router, "dev", stream)
        assert trail(response) == [("openai", "error", "connection_error"), ("openai", "ok", None)]
        return
    provider, request = router.resolve(req("dev"))
    it = provider.stream(request)
    seen = []
    with pytest.raises(StreamBrokenError) as info:
        async for event in it:
            seen.append(event)
    assert any(isinstance(e, TextDelta) for e in seen)
    assert "not switching provider" in info.value.message
    assert [(a.provider, a.status) for a in attempts_of(info.value)] == [("openai", "error")]
    assert len(fakes["openai"].requests) == 1 and fakes["anthropic"].requests == []
    assert isinstance(info.value, EPError) and info.value.status_code == 502


async def test_exhausted_openai_quota_falls_over_without_retrying(make_router, fakes, stream) -> None:
    fakes["openai"].enqueue(Fault("status", status=429, error_type="insufficient_quota", retry_after=0.01,
                                  message="You exceeded your current quota, please check your plan and billing details."))
    response = await call(make_router(CHAIN), "dev", stream)
    assert trail(response) == [("openai", "error", "insufficient_quota"), ("anthropic", "ok", None)]
    assert len(fakes["openai"].requests) == 1


async def test_anthropic_credit_balance_too_low_falls_over_without_retrying(make_router, fakes, stream) -> None:
    fakes["anthropic"].enqueue(Fault("status", status=400, error_type="invalid_request_error",
                                     message="Your credit balance is too low to access the Anthropic API."))
    response = await call(make_router(CHAIN), "claude_first", stream)
    assert trail(response) == [("anthropic", "error", "insufficient_quota"), ("openai", "ok", None)]
    assert len(fakes["anthropic"].requests) == 1
