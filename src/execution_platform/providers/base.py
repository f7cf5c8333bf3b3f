"""The abstract provider every adapter and wrapper implements, and the base of wrappers around one provider."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import ClassVar

from ..errors import InvalidRequestError
from ..model import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamAccumulator,
    StreamEvent,
)


class Provider(ABC):
    """Something that answers canonical chat requests.

    ``request.model`` is the provider's own model name (routing strips ``provider/``). ``stream`` is an
    async generator: closing it early (``aclose``, task cancellation) must release the upstream
    connection at once.
    """

    name: str = "provider"
    # Models to advertise on /v1/models besides the price catalogue's (e.g. aliases, a local model file).
    listed_models: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def lists_model(cls, model: str) -> bool:
        """Whether a model of this provider's price catalogue is one to advertise on /v1/models.

        Adapters narrow it to the families their capability table knows (chat and embedding models,
        not audio or image ones), so a picker only offers what this adapter can serve.
        """
        return True

    @abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """One vector per input text. Most upstreams have no embeddings, so the default is a 400 that
        says so; the adapters of those that do (OpenAI and compatible servers, Gemini, the local
        model) override it. ``request.model`` is the provider's own model name, as for ``chat``."""
        raise InvalidRequestError(
            f"provider '{self.name}' has no embeddings (model '{request.model}'); "
            "use an embedding model of openai, gemini or local",
            param="model",
        )

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens ``request`` would cost: the provider's own count where it has a counting endpoint.

        A :class:`WrapperProvider` does not change the prompt, so it counts through the provider it
        wraps; a leaf without a counting endpoint counts offline (see :mod:`.token_count`). Never a
        made-up zero.
        """
        import asyncio

        from .token_count import count_request_tokens

        # In a thread: the first call loads the tokenizer (tenths of a second, more on a busy machine)
        # and a long prompt takes milliseconds to encode; neither may stall the event loop.
        return await asyncio.to_thread(count_request_tokens, request)

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


class WrapperProvider(Provider):
    """A provider that adds one concern (retries, a breaker, deadlines, metering…) around ``inner``.

    Everything but the call itself is the wrapped provider's: its ``name``, capabilities, token count,
    output cap and pooled resources. Subclasses implement ``chat`` and ``stream`` (``embed`` is delegated unless overridden) and override only the
    parts their concern changes (an endpoint, say, answers for its own model). It lives here, not in
    ``routing``, so wrappers below routing (metering in ``money``) share it without an upward import.
    """

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name

    def capabilities(self, model: str) -> Capabilities:
        return self.inner.capabilities(model)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Delegated as it is; wrappers whose concern applies to every call (retries, metering…)
        override it as they override ``chat``."""
        return await self.inner.embed(request)

    async def count_tokens(self, request: ChatRequest) -> int:
        return await self.inner.count_tokens(request)

    def output_cap(self, request: ChatRequest) -> int | None:
        return self.inner.output_cap(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
