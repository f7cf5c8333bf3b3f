"""The Python SDK surface: ``Client`` (async) and ``SyncClient``.

    client = Client()                      # configured from EP_* / standard env vars
    answer = await client.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    async for event in client.stream(model="anthropic/claude-sonnet-4-5", messages=[...]):
        ...
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .model import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamEvent,
    ToolSpec,
)
from .providers.base import Provider, WrapperProvider

if TYPE_CHECKING:  # loaded lazily at run time: importing the SDK stays cheap
    from .config.schema import Config
    from .config.settings import Settings
    from .money.meter import Meter
    from .money.metering import CallContext
    from .routing.router import Router

T = TypeVar("T")


class Client:
    """Calls any provider through the canonical model.

    ``model`` is ``provider/model``. Providers are created on first use from the settings, so a
    missing key only fails the calls that need it, with a message naming the variable to set.

    With a YAML configuration (``config=`` a path or a loaded ``Config``, or ``EP_CONFIG``) calls go
    through the :class:`~execution_platform.routing.Router`: personas (``persona:NAME``), deployments,
    retries, fallbacks and breakers.

    With ``meter=`` (a :class:`~execution_platform.money.meter.Meter`, or ``True`` to open one from
    ``EP_DATABASE_URL`` / ``EP_REDIS_URL``) every call pays its way: rate limits once per request, a
    budget reservation and a ledger row per upstream attempt, ``response.cost_usd`` set. Who pays comes
    from ``request.metadata`` and from a ``money.metering.call_context`` active when the call is made.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        providers: dict[str, Provider] | None = None,
        config: Config | str | os.PathLike[str] | None = None,
        meter: Meter | bool | None = None,
    ) -> None:
        if settings is None:
            from .config.settings import Settings

            settings = Settings()
        self.settings = settings
        self._providers: dict[str, Provider] = dict(providers or {})
        self._given = set(self._providers)
        from .providers.http import HttpClient

        # One connection pool per client: its adapters share it and ``aclose`` releases it.
        self.http = HttpClient()
        self.router: Router | None = None
        self._metered: dict[str, Provider] = {}
        if config is None:
            config = settings.config
        loaded: Config | None = None
        if config is not None:
            from .config.file import load_config
            from .config.schema import Config
            from .routing.router import Router

            loaded = config if isinstance(config, Config) else load_config(config)
            self.router = Router(loaded, settings, providers=self._providers, wrap=self._leaf, http=self.http)
        self._owns_meter = meter is True
        self.meter: Meter | None = None
        if meter is True:
            from .money.meter import Meter

            self.meter = Meter.from_settings(settings, loaded)
        elif meter:
            self.meter = meter

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            from .providers.registry import create_provider

            self._providers[name] = create_provider(name, self.settings, http=self.http)
        return self._providers[name]

    def resolve(self, request: ChatRequest) -> tuple[Provider, ChatRequest]:
        """Pick the provider for ``request.model`` and rewrite the model to the provider's own name."""
        if self.router is not None:
            return self.router.resolve(request)
        from .providers.registry import split_model

        provider_name, model = split_model(request.model)
        return self._direct(provider_name), request.model_copy(update={"model": model})

    def _direct(self, provider_name: str) -> Provider:
        """A directly addressed provider (no router), behind its per-attempt meter when metered."""
        provider = self.provider(provider_name)
        if self.meter is not None:
            metered = self._metered.get(provider_name)
            if metered is None or getattr(metered, "inner", None) is not provider:
                metered = self._metered[provider_name] = self.meter.leaf(provider)
            provider = metered
        return provider

    def _leaf(self, adapter: Provider, config: Any, deployment: str | None) -> Provider:
        """Router hook: per-attempt metering between each Endpoint and its adapter (when metered).

        Decided per call, not when the stack is built, so a meter attached after start-up applies."""
        return _LeafSwitch(self, adapter, config, deployment)

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
        if self.meter is None:
            return await provider.chat(resolved)
        from .money.metering import CallContext, call_context, current_context

        admission = await self.meter.admit(resolved, current_context() or CallContext(), self._config())
        error: BaseException | None = None
        try:
            with call_context(admission.ctx):
                return await provider.chat(resolved)
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self.meter.release(admission, error)

    async def embed(self, request: EmbeddingRequest, *, payer: CallContext | None = None) -> EmbeddingResponse:
        """Vectors for ``request.inputs`` from the model ``request.model`` addresses.

        Resolved like :meth:`send` (``provider/model``, or a deployment or group through the router; a
        persona is a chat policy and is refused), so retries and breakers apply. With a meter, ``payer``
        (who pays, under which limits; it receives the outcome: ``cost_usd``, ``rate_headers``…) is
        admitted once against the request's rate limits and every attempt is metered by the routing
        stack's leaf, as a chat attempt is: budget hold, settlement, ledger row.
        """
        if self.router is not None:
            provider, resolved = self.router.resolve_target(request.model), request
        else:
            from .providers.registry import split_model

            provider_name, model = split_model(request.model)
            provider, resolved = self._direct(provider_name), request.model_copy(update={"model": model})
        if self.meter is None:
            return await provider.embed(resolved)
        from .money.metering import CallContext, call_context

        admission = await self.meter.admit(resolved, payer if payer is not None else CallContext(), self._config())
        error: BaseException | None = None
        try:
            with call_context(admission.ctx):
                return await provider.embed(resolved)
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self.meter.release(admission, error)

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens of a canonical request, through the same routing as :meth:`send`.

        Exact where the serving provider counts (Anthropic, Gemini: their free counting endpoints), an
        offline ``o200k_base`` count otherwise; a persona counts with its first usable target. Not
        metered: counting is free upstream and makes no ledger row.
        """
        provider, resolved = self.resolve(request)
        return await provider.count_tokens(resolved)

    def send_stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream the answer to a canonical request; closing the iterator cancels the upstream call.

        The returned stream has an ``attempts`` attribute (``routing.attempts_of(stream)``): the
        upstream attempts made so far, including the serving one once the first event has arrived.
        """
        from .routing.attempts import RoutedStream

        ctx = None
        if self.meter is not None:  # captured now: the stream is consumed later, maybe by other tasks
            from .money.metering import current_context

            ctx = current_context()
        return RoutedStream(lambda routed: self._stream(routed, request, ctx))

    async def _stream(self, routed: Any, request: ChatRequest, ctx: Any = None) -> AsyncIterator[StreamEvent]:
        provider, resolved = self.resolve(request)
        if self.meter is None:
            inner = provider.stream(resolved)
            routed.follow(inner)
            try:
                async for event in inner:
                    yield event
            finally:
                routed.settle()
                await inner.aclose()  # type: ignore[attr-defined]
            return
        from .money.metering import CallContext, call_context

        admission = await self.meter.admit(resolved, ctx or CallContext(), self._config())
        error: BaseException | None = None
        try:
            inner = provider.stream(resolved)
            routed.follow(inner)
            try:
                while True:
                    # The context is set around each step only: the consumer may switch tasks
                    # between events, and a context variable must be reset where it was set.
                    with call_context(admission.ctx):
                        try:
                            event = await inner.__anext__()
                        except StopAsyncIteration:
                            break
                    yield event
            finally:
                routed.settle()
                await inner.aclose()  # type: ignore[attr-defined]
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self.meter.release(admission, error)

    def _config(self) -> Config | None:
        return self.router.config if self.router is not None else None

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
    ) -> AsyncGenerator[StreamEvent, None]:
        async for event in self.send_stream(self.build_request(model, messages, tools, **params)):
            yield event

    async def aclose(self) -> None:
        if self.router is not None:
            await self.router.aclose()
        for name, provider in self._providers.items():
            if name not in self._given:
                await provider.aclose()
        if self._owns_meter and self.meter is not None:
            await self.meter.aclose()
        await self.http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _LeafSwitch(WrapperProvider):
    """An adapter of the routing stack, metered per attempt whenever the client has a meter.

    Token counts go straight to the adapter, unmetered (the base's ``count_tokens``): counting is free.
    """

    def __init__(self, client: Client, adapter: Provider, config: Any, deployment: str | None) -> None:
        super().__init__(adapter)
        self.client = client
        self.config = config
        self.deployment = deployment
        self._metered: tuple[Meter, Provider] | None = None  # (the meter it was built for, its leaf)

    def _target(self) -> Provider:
        meter = self.client.meter
        if meter is None:
            return self.inner
        if self._metered is None or self._metered[0] is not meter:
            self._metered = (meter, meter.leaf(self.inner, self.config, self.deployment))
        return self._metered[1]

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self._target().chat(request)

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._target().stream(request)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await self._target().embed(request)


class SyncClient:
    """Blocking wrapper: runs an event loop in a private thread so it works inside other loops too."""

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        self._client = Client(settings, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ep-sync-client", daemon=True)
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, **kwargs: Any) -> ChatResponse:
        return self._run(self._client.chat(**kwargs))

    def count_tokens(self, request: ChatRequest) -> int:
        return self._run(self._client.count_tokens(request))

    def embed(self, request: EmbeddingRequest, *, payer: CallContext | None = None) -> EmbeddingResponse:
        return self._run(self._client.embed(request, payer=payer))

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
