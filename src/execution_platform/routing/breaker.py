"""Circuit breaker per deployment: a dead upstream costs one fast skip, not a timeout per request.

Closed → (``failure_threshold`` consecutive retryable failures) → open → (``cooldown`` seconds) →
half-open, where ``half_open_probes`` calls are let through; a success closes the breaker, a failure
opens it again. Answers such as a 400 prove the upstream is alive and count as successes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from ..errors import EPError, UpstreamServerError
from ..model import (
    Attempt,
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
)
from ..providers.base import Provider, WrapperProvider
from .attempts import RoutedStream, attach, attempts_of, close_quietly
from .gate import Answer

State = Literal["closed", "open", "half_open"]


class CircuitOpenError(UpstreamServerError):
    """Raised at once instead of calling an upstream whose breaker is open; fallback moves on."""

    status_code = 502  # the external contract: every target failed -> 502
    type = "circuit_open"
    retryable = True


def counts_as_failure(err: EPError) -> bool:
    return err.retryable and not isinstance(err, CircuitOpenError)


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._state, self._probes = "half_open", 0
        return self._state

    def is_open(self) -> bool:
        """True while calls would be refused (used by the balancer to prefer other deployments)."""
        state = self.state
        return state == "open" or (state == "half_open" and self._probes >= self.half_open_probes)

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probes < self.half_open_probes:
            self._probes += 1
            return True
        return False

    def success(self) -> None:
        self._state, self._failures, self._probes = "closed", 0, 0

    def failure(self) -> None:
        if self._state == "half_open":
            self._trip()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._trip()

    def abandon(self) -> None:
        """A call let through ended without a verdict (the caller went away)."""
        if self._state == "half_open" and self._probes > 0:
            self._probes -= 1

    def _trip(self) -> None:
        self._state, self._opened_at, self._probes, self._failures = "open", self._clock(), 0, 0

    def verdict(self, err: EPError | None) -> None:
        if err is not None and getattr(err, "before_upstream", False):
            self.abandon()  # refused by our own budget/limit checks: says nothing about the upstream
            return
        if err is not None and counts_as_failure(err):
            self.failure()
        else:
            self.success()


class CircuitBreakerProvider(WrapperProvider):
    def __init__(
        self, inner: Provider, breaker: CircuitBreaker, *, model: str, deployment: str | None = None
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker
        self.model = model
        self.deployment = deployment

    def capabilities(self, model: str | None = None) -> Capabilities:
        return self.inner.capabilities(self.model)  # the model this breaker guards, whatever is asked

    def _refuse(self) -> EPError:
        where = self.deployment or f"{self.name}/{self.model}"
        err = CircuitOpenError(f"{where}: circuit open after repeated failures; skipped", provider=self.name)
        skipped = Attempt(
            provider=self.name, model=self.model, deployment=self.deployment, status="skipped",
            error_type=err.type, error_message=err.message,
        )
        return attach(err, [skipped])

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self._guarded(lambda: self.inner.chat(request))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await self._guarded(lambda: self.inner.embed(request))

    async def _guarded(self, call: Callable[[], Awaitable[Answer]]) -> Answer:
        """One whole-answer call through the breaker: refused while open, its outcome a verdict."""
        if not self.breaker.allow():
            raise self._refuse()
        try:
            response = await call()
        except EPError as exc:
            self.breaker.verdict(exc)
            raise
        except BaseException:
            self.breaker.abandon()
            raise
        self.breaker.success()
        return response

    def stream(self, request: ChatRequest) -> RoutedStream:
        return RoutedStream(lambda routed: self._stream(routed, request))

    async def _stream(self, routed: RoutedStream, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if not self.breaker.allow():
            err = self._refuse()
            for attempt in attempts_of(err):
                routed.record(attempt)
            raise err
        inner = self.inner.stream(request)
        routed.follow(inner)
        verdict_given = False
        try:
            async for event in inner:
                yield event
            self.breaker.success()
            verdict_given = True
        except EPError as exc:
            self.breaker.verdict(exc)
            verdict_given = True
            routed.settle()
            attach(exc, routed.attempts)
            raise
        finally:
            if not verdict_given:
                self.breaker.abandon()
            routed.settle()
            await close_quietly(inner)
