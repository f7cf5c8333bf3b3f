"""An ordered chain of targets: the first that can serve the request and does not fail answers it.

Targets lacking a capability the request needs are skipped (recorded as skipped attempts); when none
can serve it, :class:`~execution_platform.errors.CapabilityMissingError` (412) says what each lacked.
The call moves on (:func:`~.moves.moves_to_next_target`) after a retryable error (after the target's
own retries), a context-length error (the next target may have a larger window), an exhausted quota
(the next target may bill another account; the exhausted one is not retried) or a missing key; any
other error is final. A stream moves on only while
nothing but its start event has arrived: once content has been produced the chain fails with
:class:`StreamBrokenError` instead of splicing a second provider's answer onto the first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import CapabilityMissingError, EPError, StreamInterruptedError
from ..model import Attempt, Capabilities, ChatRequest, ChatResponse, StreamEvent
from ..providers.base import Provider
from .attempts import RoutedStream, attach
from .capabilities import missing, needs_of
from .gate import first_answer, first_stream
from .moves import moves_to_next_target


class StreamBrokenError(StreamInterruptedError):
    """The upstream failed after content reached the caller; the answer cannot be completed elsewhere."""

    retryable = False


@dataclass
class Target:
    """One link of the chain. ``params`` are request fields this target overrides (temperature, …)."""

    provider: Provider
    label: str
    capabilities: Capabilities
    provider_name: str = ""
    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def prepare(self, request: ChatRequest) -> ChatRequest:
        if not self.params:
            return request
        update = dict(self.params)
        if "provider_options" in update:
            update["provider_options"] = {**request.provider_options, **update["provider_options"]}
        return request.model_copy(update=update)


class FallbackProvider(Provider):
    def __init__(self, targets: list[Target], *, requires: Iterable[str] = (), name: str = "fallback") -> None:
        if not targets:
            raise ValueError("a fallback chain needs at least one target")
        self.targets = targets
        self.requires = tuple(requires)
        self.name = name

    def capabilities(self, model: str | None = None) -> Capabilities:
        return self.targets[0].capabilities

    def plan(self, request: ChatRequest, *, stream: bool) -> tuple[list[tuple[Target, ChatRequest]], list[Attempt]]:
        """The targets able to serve ``request`` (with their prepared requests) and the skips."""
        usable: list[tuple[Target, ChatRequest]] = []
        skipped: list[Attempt] = []
        reasons: list[str] = []
        for target in self.targets:
            prepared = target.prepare(request)
            lacking = missing(target.capabilities, needs_of(prepared, self.requires, stream=stream))
            if lacking:
                reasons.append(f"{target.label} lacks {', '.join(lacking)}")
                skipped.append(
                    Attempt(
                        provider=target.provider_name or target.provider.name,
                        model=target.model or target.label,
                        status="skipped",
                        error_type=CapabilityMissingError.type,
                        error_message="lacks " + ", ".join(lacking),
                    )
                )
            else:
                usable.append((target, prepared))
        if not usable:
            err = CapabilityMissingError("no target can serve this request: " + "; ".join(reasons), code="capability_missing")
            raise attach(err, skipped)
        return usable, skipped

    async def chat(self, request: ChatRequest) -> ChatResponse:
        usable, skipped = self.plan(request, stream=False)
        return await first_answer(usable, lambda planned: planned[0].provider.chat(planned[1]), _failed, skipped)

    def stream(self, request: ChatRequest) -> RoutedStream:
        def planned(routed: RoutedStream) -> Iterator[tuple[Target, ChatRequest]]:
            usable, skipped = self.plan(request, stream=True)  # planned when the stream starts
            for attempt in skipped:
                routed.record(attempt)
            yield from usable

        return RoutedStream(lambda routed: first_stream(routed, planned(routed), _open, _failed))

    async def count_tokens(self, request: ChatRequest) -> int:
        """Counted by the first target able to serve the request: the one that will normally answer it."""
        usable, _ = self.plan(request, stream=False)
        target, prepared = usable[0]
        return await target.provider.count_tokens(prepared)


def _open(planned: tuple[Target, ChatRequest]) -> AsyncIterator[StreamEvent]:
    target, prepared = planned
    return target.provider.stream(prepared)


async def _failed(planned: tuple[Target, ChatRequest], err: EPError, emitted: bool) -> EPError | None:
    """Give up (an error) or move on to the next target (None).

    Once content went out the chain breaks rather than splice a second provider's answer onto the first.
    """
    if emitted:
        return StreamBrokenError(
            f"{planned[0].label}: the stream failed after the answer had started ({err.type}: "
            f"{err.message}); not switching provider mid-answer",
            provider=err.provider,
            upstream_status=err.upstream_status,
        )
    return None if moves_to_next_target(err) else err
