"""The Python SDK surface: ``Client`` (async) and ``SyncClient``.

    client = Client()                      # configured from EP_* / standard env vars
    answer = await client.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    async for event in client.stream(model="anthropic/claude-sonnet-4-5", messages=[...]):
        ...
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from .model import ChatRequest, ChatResponse, Message, StreamEvent, ToolSpec
from .providers.base import Provider


class Client:
    """Calls any provider through the canonical model.

    ``model`` is ``provider/model``. Providers are created on first use from the settings, so a
    missing key only fails the calls that need it, with a message naming the variable to set.

    With a YAML configuration (``config=`` a path or a loaded ``Config``, or ``EP_CONFIG``) calls go
    through the :class:`~execution_platform.routing.Router`: personas (``persona:NAME``), deployments,
    retries, fallbacks and breakers.
    """

    def __init__(
        self, settings: Any = None, *, providers: dict[str, Provider] | None = None, config: Any = None
    ) -> None:
        if settings is None:
            from .config.settings import Settings

            settings = Settings()
        self.settings = settings
        self._providers: dict[str, Provider] = dict(providers or {})
        self.router: Any = None
        if config is None:
            config = getattr(settings, "config", None)
        if config is not None:
            from .config.file import load_config
            from .config.schema import Config
            from .routing.router import Router

            loaded = config if isinstance(config, Config) else load_config(config)
            self.router = Router(loaded, settings, providers=self._providers)

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            from .providers.registry import create_provider

            self._providers[name] = create_provider(name, self.settings)
        return self._providers[name]

    def resolve(self, request: ChatRequest) -> tuple[Provider, ChatRequest]:
        """Pick the provider for ``request.model`` and rewrite the model to the provider's own name."""
        if self.router is not None:
            return self.router.resolve(request)
        from .providers.registry import split_model

        provider_name, model = split_model(request.model)
        return self.provider(provider_name), request.model_copy(update={"model": model})

    @staticmethod
    def build_request(
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
        **params: Any,
    ) -> ChatRequest:
        return ChatRequest.model_validate(
            {"model": model, "messages": list(messages), "tools": list(tools or []), **params}
        )

    async def send(self, request: ChatRequest) -> ChatResponse:
        """Answer a canonical request (the gateway's entry point; ``chat`` builds one for you)."""
        provider, resolved = self.resolve(request)
        return await provider.chat(resolved)

    def send_stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream the answer to a canonical request; closing the iterator cancels the upstream call.

        The returned stream has an ``attempts`` attribute (``routing.attempts_of(stream)``): the
        upstream attempts made so far, including the serving one once the first event has arrived.
        """
        from .routing.attempts import RoutedStream

        return RoutedStream(lambda routed: self._stream(routed, request))

    async def _stream(self, routed: Any, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        provider, resolved = self.resolve(request)
        inner = provider.stream(resolved)
        routed.follow(inner)
        try:
            async for event in inner:
                yield event
        finally:
            routed.settle()
            await inner.aclose()  # type: ignore[attr-defined]

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
        **params: Any,
    ) -> ChatResponse:
        return await self.send(self.build_request(model, messages, tools, **params))

    async def stream(
        self,
        *,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
        **params: Any,
    ) -> AsyncIterator[StreamEvent]:
        async for event in self.send_stream(self.build_request(model, messages, tools, **params)):
            yield event

    async def aclose(self) -> None:
        if self.router is not None:
            await self.router.aclose()
        for provider in self._providers.values():
            await provider.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncClient:
    """Blocking wrapper: runs an event loop in a private thread so it works inside other loops too."""

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        self._client = Client(settings, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ep-sync-client", daemon=True)
        self._thread.start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, **kwargs: Any) -> ChatResponse:
        return self._run(self._client.chat(**kwargs))

    def stream(self, **kwargs: Any) -> Iterator[StreamEvent]:
        agen = self._client.stream(**kwargs)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def close(self) -> None:
        self._run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
