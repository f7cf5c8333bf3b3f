"""The abstract provider: what every adapter and every wrapper (fallback, retry, limits) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from ..model import Capabilities, ChatRequest, ChatResponse, StreamAccumulator, StreamEvent


class Provider(ABC):
    """Something that answers canonical chat requests.

    ``request.model`` is the provider's own model name (routing strips ``provider/``). ``stream`` is an
    async generator: closing it early (``aclose``, task cancellation) must release the upstream
    connection at once.
    """

    name: str = "provider"

    @abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def output_cap(self, request: ChatRequest) -> int | None:
        """The output cap this provider will send upstream, when it is fixed before the call.

        Budget holds are sized from it: an adapter that fills in a default cap (Anthropic requires
        one) holds for that default, not for the model's maximum.
        """
        return request.max_tokens

    async def aclose(self) -> None:
        """Release pooled resources (nothing by default)."""
        return None

    async def chat_via_stream(self, request: ChatRequest) -> ChatResponse:
        """Answer a non-streaming call by folding the stream (for providers that only stream)."""
        acc = StreamAccumulator()
        async for event in self.stream(request):
            acc.add(event)
        return acc.response()
