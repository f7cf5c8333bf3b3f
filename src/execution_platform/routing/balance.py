"""Load balancing across deployments of one ``model_name``: weighted least-in-flight.

Members are ranked by in-flight calls divided by weight (so a weight-2 deployment carries twice the
concurrent load), ties broken by a weighted random draw — with no concurrency that is a plain weighted
split. Members whose breaker is open go last (they are refused fast and recorded as skipped). On a
retryable failure or an exhausted quota (:func:`~.moves.moves_to_next_deployment`) the call moves to
the next member; a stream never moves once it has produced content.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from ..errors import EPError
from ..model import Capabilities, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from ..providers.base import Provider
from .attempts import RoutedStream
from .breaker import CircuitBreaker
from .capabilities import intersect
from .gate import Answer, first_answer, first_stream
from .moves import moves_to_next_deployment


@dataclass(eq=False)
class Member:
    provider: Provider
    weight: int = 1
    breaker: CircuitBreaker | None = None
    name: str = ""
    in_flight: int = 0


class BalancedProvider(Provider):
    def __init__(self, members: list[Member], *, name: str = "balanced", rng: random.Random | None = None) -> None:
        if not members:
            raise ValueError("a balanced group needs at least one member")
        self.members = members
        self.name = name
        self._rng = rng or random.Random()

    def capabilities(self, model: str | None = None) -> Capabilities:
        return intersect([m.provider.capabilities(model or "") for m in self.members])

    def order(self) -> list[Member]:
        """Members in the order this call should try them."""

        def key(m: Member) -> tuple[bool, float, float]:
            is_open = m.breaker is not None and m.breaker.is_open()
            return (is_open, m.in_flight / m.weight, -(self._rng.random() ** (1.0 / m.weight)))

        return sorted(self.members, key=key)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self._first(lambda provider: provider.chat(request))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await self._first(lambda provider: provider.embed(request))

    async def _first(self, call: Callable[[Provider], Awaitable[Answer]]) -> Answer:
        async def attempt(member: Member) -> Answer:
            member.in_flight += 1
            try:
                return await call(member.provider)
            finally:
                member.in_flight -= 1

        return await first_answer(self.order(), attempt, _failed)

    def stream(self, request: ChatRequest) -> RoutedStream:
        def members() -> Iterator[Member]:
            yield from self.order()  # ranked when the stream starts, not when it is created

        def open_stream(member: Member) -> AsyncIterator[StreamEvent]:
            member.in_flight += 1  # until the member's try has ended (``_ended``)
            return member.provider.stream(request)

        return RoutedStream(lambda routed: first_stream(routed, members(), open_stream, _failed, _ended))

    async def count_tokens(self, request: ChatRequest) -> int:
        return await self.order()[0].provider.count_tokens(request)


async def _failed(member: Member, err: EPError, emitted: bool) -> EPError | None:
    """Give up (the error) unless nothing went out yet and another deployment may answer (None)."""
    return err if emitted or not moves_to_next_deployment(err) else None


def _ended(member: Member) -> None:
    member.in_flight -= 1
