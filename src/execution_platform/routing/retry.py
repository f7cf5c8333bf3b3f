"""Retry one target on retryable errors: exponential backoff with full jitter, ``Retry-After`` honoured.

Only errors whose ``retryable`` flag is set are retried (429, 408, 5xx, 529, timeouts, connection
errors; :func:`~.moves.retries_same_target`); every other 4xx is final. An upstream asking to wait longer than ``max_retry_after`` is not
waited for: the error goes up at once so the fallback chain can try elsewhere. An open circuit is not
retried either (it would only be refused again), and a stream is never retried once it has produced
content.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..errors import EPError
from ..model import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from ..providers.base import Provider, WrapperProvider
from .attempts import RoutedStream
from .gate import first_answer, first_stream
from .moves import retries_same_target


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 2
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    max_retry_after: float = 20.0

    def delay(self, retry_number: int, err: EPError, rng: random.Random) -> float | None:
        """Seconds to wait before retry ``retry_number`` (0-based), or None to give up on this target."""
        if retry_number + 1 >= self.max_attempts or not retries_same_target(err):
            return None
        if err.retry_after is not None:
            return err.retry_after if err.retry_after <= self.max_retry_after else None
        return rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**retry_number)))


class RetryingProvider(WrapperProvider):
    def __init__(
        self,
        inner: Provider,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    # Not coroutines themselves: with no retry configured (``max_attempts`` 1) this layer has nothing
    # to do, so the call is the inner one (its answer and errors already carry their attempt).
    def chat(self, request: ChatRequest) -> Coroutine[Any, Any, ChatResponse]:
        if self.policy.max_attempts <= 1:
            return self.inner.chat(request)
        return first_answer(itertools.count(), lambda _: self.inner.chat(request), self._failed)

    def embed(self, request: EmbeddingRequest) -> Coroutine[Any, Any, EmbeddingResponse]:
        if self.policy.max_attempts <= 1:
            return self.inner.embed(request)
        return first_answer(itertools.count(), lambda _: self.inner.embed(request), self._failed)

    def stream(self, request: ChatRequest) -> RoutedStream:
        def open_stream(retry: int) -> AsyncIterator[StreamEvent]:
            return self.inner.stream(request)

        return RoutedStream(lambda routed: first_stream(routed, itertools.count(), open_stream, self._failed))

    async def _failed(self, retry: int, err: EPError, emitted: bool) -> EPError | None:
        """Give up (the error) or wait out the backoff before retry number ``retry + 1`` (None)."""
        wait = None if emitted else self.policy.delay(retry, err, self._rng)
        if wait is None:
            return err
        await self._sleep(wait)
        return None
