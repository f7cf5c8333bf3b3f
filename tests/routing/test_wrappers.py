"""Retry, breaker, balancer and fallback logic over scripted in-process providers."""

from __future__ import annotations

import random

import pytest

from execution_platform.errors import (
    CapabilityMissingError,
    InvalidRequestError,
    OverloadedError,
    QuotaExceededError,
    RateLimitError,
    UpstreamServerError,
)
from execution_platform.model import Capabilities, ChatRequest, ImagePart, Message, TextDelta, TextPart
from execution_platform.routing import (
    BalancedProvider,
    CircuitBreaker,
    CircuitBreakerProvider,
    CircuitOpenError,
    Endpoint,
    FallbackProvider,
    Member,
    RetryingProvider,
    RetryPolicy,
    StreamBrokenError,
    Target,
    attempts_of,
    upstream_attempts,
)
from tests.fakes.scripted import Answer, Fail, ScriptedProvider


def request(text: str = "hi", **kw: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": text}], **kw})


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def leaf(provider: ScriptedProvider, model: str = "m1", breaker: CircuitBreaker | None = None, deployment: str | None = None):
    endpoint = Endpoint(provider, model=model, provider=provider.name, deployment=deployment)
    return CircuitBreakerProvider(endpoint, breaker or CircuitBreaker(), model=model, deployment=deployment)


# -- retry -------------------------------------------------------------------------------------------
async def test_retry_honours_retry_after_and_records_each_attempt() -> None:
    up = ScriptedProvider("a").then(Fail(RateLimitError("slow down", retry_after=1.5)))
    sleeps = Sleeps()
    retrying = RetryingProvider(leaf(up), RetryPolicy(max_attempts=3), sleep=sleeps)
    response = await retrying.chat(request())
    assert sleeps.waits == [1.5]
    assert [(a.status, a.error_type) for a in response.attempts] == [("error", "rate_limit_error"), ("ok", None)]
    assert response.attempts[0].model == "m1"


async def test_a_single_attempt_policy_calls_once_and_keeps_the_attempts() -> None:
    up = ScriptedProvider("a").then(Fail(RateLimitError("slow down", retry_after=0.1)))
    sleeps = Sleeps()
    retrying = RetryingProvider(leaf(up), RetryPolicy(max_attempts=1), sleep=sleeps)
    with pytest.raises(RateLimitError) as info:
        await retrying.chat(request())
    assert sleeps.waits == [] and len(up.calls) == 1
    assert [(a.status, a.error_type) for a in attempts_of(info.value)] == [("error", "rate_limit_error")]
    response = await retrying.chat(request())
    assert [(a.status, a.model) for a in response.attempts] == [("ok", "m1")]


async def test_retry_after_beyond_cap_gives_up_at_once() -> None:
    up = ScriptedProvider("a").then(Fail(RateLimitError("later", retry_after=120)))
    sleeps = Sleeps()
    retrying = RetryingProvider(leaf(up), RetryPolicy(max_attempts=3, max_retry_after=10), sleep=sleeps)
    with pytest.raises(RateLimitError) as info:
        await retrying.chat(request())
    assert sleeps.waits == [] and len(up.calls) == 1
    assert len(attempts_of(info.value)) == 1


async def test_backoff_is_full_jitter_and_exponential() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=1.0, backoff_max=5.0)
    rng = random.Random(7)
    err = UpstreamServerError("boom")
    for n, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (6, 5.0)]:
        draws = [policy.delay(n, err, rng) for _ in range(200)]
        assert all(d is not None and 0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8 and min(draws) < ceiling * 0.2  # spread over the whole range


async def test_non_retryable_4xx_is_not_retried() -> None:
    up = ScriptedProvider("a").then(Fail(InvalidRequestError("bad field")))
    sleeps = Sleeps()
    with pytest.raises(InvalidRequestError):
        await RetryingProvider(leaf(up), RetryPolicy(max_attempts=5), sleep=sleeps).chat(request())
    assert len(up.calls) == 1 and sleeps.waits == []


async def test_stream_retried_before_content_but_not_after() -> None:
    up = ScriptedProvider("a").then(Fail(UpstreamServerError("early")), Answer("fine now"))
    stream = RetryingProvider(leaf(up), RetryPolicy(max_attempts=2), sleep=Sleeps()).stream(request())
    text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert text == "finenow"
    assert [a.status for a in stream.attempts] == ["error", "ok"]

    up = ScriptedProvider("a").then(Fail(UpstreamServerError("late"), after_events=2))
    stream = RetryingProvider(leaf(up), RetryPolicy(max_attempts=3), sleep=Sleeps()).stream(request())
    with pytest.raises(UpstreamServerError):
        async for _ in stream:
            pass
    assert len(up.calls) == 1


# -- breaker -----------------------------------------------------------------------------------------
async def test_breaker_opens_skips_fast_then_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, cooldown=10, clock=lambda: now[0])
    up = ScriptedProvider("a", default=Fail(UpstreamServerError("down")))
    wrapped = leaf(up, breaker=breaker)
    for _ in range(2):
        with pytest.raises(UpstreamServerError):
            await wrapped.chat(request())
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await wrapped.chat(request())
    assert len(up.calls) == 2  # refused without calling the upstream
    assert [a.status for a in attempts_of(info.value)] == ["skipped"]
    now[0] = 10.0
    assert breaker.state == "half_open"
    up.default = Answer("back")
    assert (await wrapped.chat(request())).message.text == "back"
    assert breaker.state == "closed"


async def test_half_open_failure_reopens_and_4xx_does_not_count() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5, clock=lambda: now[0])
    up = ScriptedProvider("a").then(Fail(InvalidRequestError("caller's fault")), Fail(OverloadedError("busy")))
    wrapped = leaf(up, breaker=breaker)
    with pytest.raises(InvalidRequestError):
        await wrapped.chat(request())
    assert breaker.state == "closed"
    with pytest.raises(OverloadedError):
        await wrapped.chat(request())
    assert breaker.state == "open"
    now[0] = 6.0
    up.then(Fail(OverloadedError("still busy")))
    with pytest.raises(OverloadedError):
        await wrapped.chat(request())
    assert breaker.state == "open"


# -- balancing ---------------------------------------------------------------------------------------
async def test_weighted_split_without_concurrency() -> None:
    a, b = ScriptedProvider("a"), ScriptedProvider("b")
    balanced = BalancedProvider(
        [Member(leaf(a, deployment="a"), weight=3, name="a"), Member(leaf(b, deployment="b"), weight=1, name="b")],
        rng=random.Random(1),
    )
    for _ in range(400):
        await balanced.chat(request())
    share = len(a.calls) / 400
    assert 0.68 < share < 0.82  # 3:1 → 75 %


async def test_least_in_flight_spreads_concurrent_calls() -> None:
    import asyncio

    a, b = ScriptedProvider("a", default=Answer(delay=0.05)), ScriptedProvider("b", default=Answer(delay=0.05))
    balanced = BalancedProvider([Member(leaf(a), name="a"), Member(leaf(b), name="b")], rng=random.Random(3))
    await asyncio.gather(*(balanced.chat(request()) for _ in range(20)))
    assert len(a.calls) == len(b.calls) == 10
    assert a.max_in_flight == b.max_in_flight == 10


async def test_balancer_skips_open_breaker_and_fails_over_within_group() -> None:
    open_breaker = CircuitBreaker(failure_threshold=1, cooldown=60)
    open_breaker.failure()
    a, b = ScriptedProvider("a"), ScriptedProvider("b")
    balanced = BalancedProvider(
        [Member(leaf(a, breaker=open_breaker), weight=100, breaker=open_breaker), Member(leaf(b), weight=1)]
    )
    for _ in range(5):
        await balanced.chat(request())
    assert len(a.calls) == 0 and len(b.calls) == 5

    c = ScriptedProvider("c").then(Fail(UpstreamServerError("x")))
    d = ScriptedProvider("d")
    group = BalancedProvider([Member(leaf(c), weight=1000), Member(leaf(d), weight=1)], rng=random.Random(0))
    response = await group.chat(request())
    assert response.provider == "d"
    assert [(a.provider, a.status) for a in response.attempts] == [("c", "error"), ("d", "ok")]


# -- fallback ----------------------------------------------------------------------------------------
def target(p: ScriptedProvider, **caps: object) -> Target:
    return Target(leaf(p), p.name, Capabilities(**caps), provider_name=p.name, model="m1")


async def test_fallback_moves_on_for_retryable_only() -> None:
    a = ScriptedProvider("a").then(Fail(OverloadedError("529")))
    b = ScriptedProvider("b")
    response = await FallbackProvider([target(a), target(b)]).chat(request())
    assert response.message.text == "from b"
    assert [(x.provider, x.status, x.error_type) for x in response.attempts] == [
        ("a", "error", "overloaded_error"), ("b", "ok", None)
    ]
    a.then(Fail(InvalidRequestError("nope")))
    with pytest.raises(InvalidRequestError):
        await FallbackProvider([target(a), target(b)]).chat(request())
    assert len(b.calls) == 1


def image_request() -> ChatRequest:
    msg = Message(role="user", content=[TextPart(text="what is this?"), ImagePart(url="https://x/y.png")])
    return ChatRequest(model="m", messages=[msg])


async def test_vision_request_skips_blind_targets_and_412_when_none() -> None:
    blind, seeing = ScriptedProvider("blind"), ScriptedProvider("seeing")
    chain = FallbackProvider([target(blind, vision=False), target(seeing, vision=True)])
    response = await chain.chat(image_request())
    assert response.provider == "seeing" and blind.calls == []
    assert [(x.provider, x.status, x.error_type) for x in response.attempts] == [
        ("blind", "skipped", "capability_missing"), ("seeing", "ok", None)
    ]
    assert upstream_attempts(response.attempts) == 1

    only_blind = FallbackProvider([target(blind, vision=False), target(ScriptedProvider("b2"), vision=False, tools=False)])
    with pytest.raises(CapabilityMissingError) as info:
        await only_blind.chat(image_request())
    assert info.value.status_code == 412
    assert "vision" in info.value.message and "blind" in info.value.message


async def test_prompt_longer_than_context_window_is_skipped() -> None:
    small, big = ScriptedProvider("small"), ScriptedProvider("big")
    chain = FallbackProvider([target(small, context_window=1000), target(big, context_window=1_000_000)])
    response = await chain.chat(request("word " * 5000))
    assert response.provider == "big"
    assert "context_window" in (response.attempts[0].error_message or "")
    # a prompt that fits by its byte count is never refused
    assert (await chain.chat(request("short"))).provider == "small"


async def test_required_tools_capability_from_persona() -> None:
    plain, tooled = ScriptedProvider("plain"), ScriptedProvider("tooled")
    chain = FallbackProvider([target(plain, tools=False), target(tooled)], requires=["tools"])
    assert (await chain.chat(request())).provider == "tooled"


async def test_stream_falls_back_before_first_token_never_after() -> None:
    a = ScriptedProvider("a").then(Fail(UpstreamServerError("down"), after_events=1))  # only the start event
    b = ScriptedProvider("b")
    stream = FallbackProvider([target(a), target(b)]).stream(request())
    events = [e async for e in stream]
    assert [e.provider for e in events if e.type == "start"] == ["b"]
    assert [(x.provider, x.status) for x in stream.attempts] == [("a", "error"), ("b", "ok")]

    a.then(Fail(UpstreamServerError("mid-answer"), after_events=2))
    stream = FallbackProvider([target(a), target(b)]).stream(request())
    got = []
    with pytest.raises(StreamBrokenError) as info:
        async for event in stream:
            got.append(event)
    assert any(isinstance(e, TextDelta) for e in got)
    assert len(b.calls) == 1  # not called again
    assert not info.value.retryable and "not switching provider" in info.value.message
    assert [x.status for x in attempts_of(info.value)] == ["error"]


async def test_stream_attempts_visible_once_first_event_arrives() -> None:
    a = ScriptedProvider("a").then(Fail(UpstreamServerError("down")))
    b = ScriptedProvider("b")
    stream = FallbackProvider([target(a), target(b)]).stream(request())
    first = await stream.__anext__()
    assert first.type == "start"
    assert [(x.provider, x.status) for x in stream.attempts] == [("a", "error"), ("b", "ok")]
    await stream.aclose()



async def test_balanced_group_moves_past_a_member_whose_quota_ran_out() -> None:
    a, b = ScriptedProvider("a").then(Fail(QuotaExceededError("quota"))), ScriptedProvider("b")
    group = BalancedProvider([Member(leaf(a), weight=1000, name="a"), Member(leaf(b), name="b")], rng=random.Random(0))
    response = await RetryingProvider(group, RetryPolicy(max_attempts=3), sleep=Sleeps()).chat(request())
    assert response.message.text == "from b" and len(a.calls) == 1
