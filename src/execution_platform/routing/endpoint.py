"""The leaf of every routing stack: one provider + model (+ deployment), timed and recorded.

It rewrites ``request.model`` to the provider's own model name, enforces the time-to-first-token and
total deadlines (for any provider, HTTP or not), maps a missed deadline to ``UpstreamTimeoutError`` and
records exactly one :class:`Attempt` per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ..errors import EPError, UpstreamTimeoutError
from ..model import (
    Attempt,
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StartEvent,
    StreamEvent,
)
from ..providers.base import Provider, WrapperProvider
from ..providers.http import Timeouts
from .attempts import RoutedStream, attach, close_quietly
from .gate import Answer


class Endpoint(WrapperProvider):
    def __init__(
        self,
        inner: Provider,
        *,
        model: str,
        provider: str | None = None,
        deployment: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        super().__init__(inner)
        self.model = model
        self.name = provider or inner.name
        self.deployment = deployment
        self.timeouts = timeouts or Timeouts()

    def capabilities(self, model: str | None = None) -> Capabilities:
        return self.inner.capabilities(self.model)

    def _attempt(self, started: float, err: EPError | None = None) -> Attempt:
        return Attempt(
            provider=self.name,
            model=self.model,
            deployment=self.deployment,
            status="ok" if err is None else ("skipped" if getattr(err, "before_upstream", False) else "error"),
            error_type=None if err is None else err.type,
            error_message=None if err is None else err.message,
            duration_ms=(time.monotonic() - started) * 1000.0,
        )

    def _own(self, request: ChatRequest) -> ChatRequest:
        return request if request.model == self.model else request.model_copy(update={"model": self.model})

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self._timed(lambda: self.inner.chat(self._own(request)))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        own = request if request.model == self.model else request.model_copy(update={"model": self.model})
        return await self._timed(lambda: self.inner.embed(own))

    async def _timed(self, call: Callable[[], Awaitable[Answer]]) -> Answer:
        """One whole-answer call under the total deadline, recorded as one attempt."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeouts.total):
                response = await call()
        except TimeoutError:
            err: EPError = UpstreamTimeoutError(
                f"{self.name}/{self.model}: no answer within {self.timeouts.total:g}s", provider=self.name
            )
            raise attach(err, [self._attempt(started, err)]) from None
        except EPError as exc:
            attach(exc, [self._attempt(started, exc)])
            raise
        response.attempts = [self._attempt(started)]
        return response

    def stream(self, request: ChatRequest) -> RoutedStream:
        return RoutedStream(lambda routed: self._stream(routed, request))

    async def count_tokens(self, request: ChatRequest) -> int:
        return await self.inner.count_tokens(self._own(request))

    def output_cap(self, request: ChatRequest) -> int | None:
        return self.inner.output_cap(self._own(request))

    async def _stream(self, routed: RoutedStream, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        total_deadline = started + self.timeouts.total
        first_deadline = min(total_deadline, started + self.timeouts.read)
        # The same deadlines on the loop's clock, converted once per stream rather than per event.
        total_at, first_at = _loop_time(total_deadline), _loop_time(first_deadline)
        attempt: Attempt | None = None
        inner = self.inner.stream(self._own(request)).__aiter__()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(first_at if attempt is None else total_at):
                        event = await inner.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    what = (
                        f"no first token within {self.timeouts.read:g}s"
                        if attempt is None
                        else f"stream exceeded {self.timeouts.total:g}s"
                    )
                    raise UpstreamTimeoutError(f"{self.name}/{self.model}: {what}", provider=self.name) from None
                if attempt is None:
                    attempt = self._attempt(started)
                    routed.record(attempt)
                if isinstance(event, StartEvent) and event.provider is None:
                    event = event.model_copy(update={"provider": self.name})  # decoders may not know it
                yield event
            if attempt is None:
                routed.record(self._attempt(started))
            else:
                attempt.duration_ms = (time.monotonic() - started) * 1000.0
        except EPError as exc:
            failed = self._attempt(started, exc)
            if attempt is None:
                routed.record(failed)
            else:
                attempt.status, attempt.error_type = "error", failed.error_type
                attempt.error_message, attempt.duration_ms = failed.error_message, failed.duration_ms
            attach(exc, routed.attempts)
            raise
        finally:
            await close_quietly(inner)


def _loop_time(monotonic_deadline: float) -> float:
    """Convert a ``time.monotonic`` deadline to the event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())
