"""The ``local`` provider: a GGUF model served on this machine, no key and no network needed.

The engine (llama.cpp's OpenAI-compatible server) runs in a supervised child process started on
first use (see ``local_supervisor``), and is reached through the OpenAI adapter on its loopback
port, so routing, metering (tokens real, cost 0), limits and every wire surface treat it like any
other provider. Tools and ``response_format`` go through the engine's grammar (``_local_tools``).

``local`` and ``local/<anything>`` address the one configured model (``EP_LOCAL_MODEL``, default the
shipped SmolLM2-135M-Instruct); answers report the model file's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import StreamInterruptedError, UpstreamConnectionError, UpstreamTimeoutError
from ..model import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StartEvent,
    StreamEvent,
    Usage,
)
from . import _local_tools
from .http import Timeouts
from .local_supervisor import EngineConfig, EngineSupervisor, shared_supervisor
from .openai import OpenAIProvider

if TYPE_CHECKING:
    from ..config.settings import Settings


DEFAULT_MAX_TOKENS = 512


def engine_config(settings: Settings | None) -> EngineConfig:
    """The engine configuration from ``EP_LOCAL_*`` settings (defaults in ``EngineConfig``)."""
    if settings is None:
        return EngineConfig()
    values: dict[str, Any] = {}
    for field in ("model", "threads", "ctx", "parallel", "idle_unload"):
        value = getattr(settings, f"local_{field}", None)
        if value is not None:
            values[field] = str(value) if field == "model" else value
    return EngineConfig(**values)


class LocalProvider(OpenAIProvider):
    name = "local"
    key_env_var = ""
    wire_answers = False  # tool calls and JSON are rebuilt from the grammar's output, never forwarded

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        engine: EngineConfig | None = None,
        http: Any = None,
        timeouts: Timeouts | None = None,
        capabilities: dict[str, Capabilities] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(api_key=None, base_url="http://127.0.0.1", http=http, timeouts=timeouts,
                         capabilities=capabilities, name=name)
        self.engine_config = engine or engine_config(settings)
        self.engine: EngineSupervisor = shared_supervisor(self.engine_config)
        self.model_name = self.engine_config.model_name()
        self._closed = False

    # -- OpenAI adapter hooks ---------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        # The engine's HTTP server may close a connection after a stream without saying so; a pooled
        # connection reused after that fails the next request. A loopback connect costs microseconds.
        return {"connection": "close"}

    def _require_key(self) -> None:
        return None

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().body(request, stream=stream)
        body["model"] = self.model_name
        if not request.max_tokens:
            # Without a cap llama.cpp generates until the slot's context is full, and a small model
            # that starts repeating itself would hold a slot (and the caller) for minutes.
            body["max_tokens"] = DEFAULT_MAX_TOKENS
        return body

    def default_capabilities(self, model: str) -> Capabilities:
        per_request = self.engine_config.ctx // max(1, self.engine_config.parallel)
        # Tools and JSON are grammar-constrained, so their *shape* is reliable on any model; whether a
        # small model picks the right tool or a sensible value is another matter (see the README).
        return Capabilities(tools=True, parallel_tools=False, vision=False, json_object=True, json_schema=True,
                            streaming=True, system_prompt=True, reasoning=False,
                            context_window=per_request, max_output_tokens=per_request)

    # -- Provider ---------------------------------------------------------------------------------
    async def _base_url(self) -> str:
        url = self.engine.running_url()
        if url is None:
            url = await asyncio.to_thread(self.engine.url)
        self.base_url = url
        return url

    async def chat(self, request: ChatRequest) -> ChatResponse:
        engine_request, tool_plan = _local_tools.plan(request)
        self.engine.begin()
        served = False
        try:
            await self._base_url()
            response = await super().chat(engine_request)
            served = True
        except (UpstreamTimeoutError, UpstreamConnectionError, StreamInterruptedError):
            await asyncio.to_thread(self.engine.check_health)  # a dead or hung engine is replaced next time
            raise
        finally:
            self.engine.end(served=served)
        response.model = self.model_name
        return _local_tools.decode_response(response, tool_plan) if tool_plan else response

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Served in this process by the small embedding model of ``local_embeddings`` (not by the chat
        engine: a 135M decoder makes poor sentence embeddings), whatever model the address names."""
        from .local_embeddings import MODEL_NAME, embedder

        vectors, tokens = await embedder().embed(request.inputs, request.dimensions)
        return EmbeddingResponse(vectors=vectors, model=MODEL_NAME, provider=self.name, usage=Usage(input_tokens=tokens))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        engine_request, tool_plan = _local_tools.plan(request)
        rewriter = _local_tools.StreamRewriter(tool_plan) if tool_plan else None
        self.engine.begin()
        served = False
        try:
            await self._base_url()
            inner = super().stream(engine_request)
            try:
                async for event in inner:
                    if isinstance(event, StartEvent):
                        event.model = self.model_name
                    if rewriter is None:
                        yield event
                    else:
                        for out in rewriter.feed(event):
                            yield out
            finally:
                await inner.aclose()  # type: ignore[attr-defined]
            served = True
        except (UpstreamTimeoutError, UpstreamConnectionError, StreamInterruptedError):
            await asyncio.to_thread(self.engine.check_health)  # a dead or hung engine is replaced next time
            raise
        finally:
            self.engine.end(served=served)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self.engine.release)
