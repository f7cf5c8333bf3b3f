"""The Python SDK surface: ``Client`` (async) and ``SyncClient``.

    client = Client()                      # configured from EP_* / standard env vars
    answer = await client.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    async for event in client.stream(model="anthropic/claude-sonnet-4-5", messages=[...]):
        ...
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
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
from .providers.base import Provider

if TYPE_CHECKING:  # loaded lazily at run time: importing the SDK stays cheap
    from .config.schema import Config
    from .config.settings import Settings
    from .money.meter import Meter
    from .money.metering import CallContext, MeteredProvider
    from .routing.attempts import RoutedStream
    from .routing.router import Router

T = TypeVar("T")
Answer = TypeVar("Answer", ChatResponse, EmbeddingResponse)
Asked = TypeVar("Asked", ChatRequest, EmbeddingRequest)


class Client:
    """Calls any provider through the canonical model.

    ``model`` is ``provider/model``. Providers are created on first use from the settings, so a
    missing key only fails the calls that need it, with a message naming the variable to set.

    With a YAML configuration (``config=`` a path or a loaded ``Config``, or ``EP_CONFIG``) calls go
    through the :class:`~execution_platform.routing.Router`: personas (``persona:NAME``), deployments,
    retries, fallbacks and breakers.

    With ``meter=`` (a :class:`~execution_platform.money.meter.Meter`, or ``True`` to open one from
    ``EP_DATABASE_URL`` / ``EP_REDIS_URL``) every call pays its way: rate limits once per request, a
    budget reservation and a ledger row per upstream attempt, ``response.cost_usd`` and
    ``response.rate_limits`` set. Who pays is the ``payer=`` of the call (a
    :class:`~execution_platform.money.metering.CallContext`: key, team, budgets, limits; it also
    receives the outcome), else the one of a ``money.metering.call_context`` block active when the call
    is made, else nobody in particular; ``request.metadata`` fills what the payer leaves unset.
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
        self._metered: dict[str, MeteredProvider] = {}
        self._addresses: dict[str, tuple[str, str]] = {}  # address -> (provider, model): split once each
        if config is None:
            config = settings.config
        loaded: Config | None = None
        if config is not None:
            from .config.file import load_config
            from .config.schema import Config

            loaded = config if isinstance(config, Config) else load_config(config)
        self._owns_meter = meter is True
        self._meter: Meter | None = None
        if meter is True:
            from .money.meter import Meter

            self._meter = Meter.from_settings(settings, loaded)
        elif meter:
            self._meter = meter
        if loaded is not None:
            from .routing.router import Router

            # Per-attempt metering sits between each Endpoint and its adapter (see ``money.meter``).
            leaf = self._meter.leaf if self._meter is not None else None
            self.router = Router(loaded, settings, providers=self._providers, wrap=leaf, http=self.http)

    @property
    def meter(self) -> Meter | None:
        """The meter given at construction (None: calls are not metered). Fixed for the client's life:
        every routing stack is built with its per-attempt leaf."""
        return self._meter

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            from .providers.registry import create_provider

            self._providers[name] = create_provider(name, self.settings, http=self.http)
        return self._providers[name]

    def resolve(self, request: ChatRequest) -> tuple[Provider, ChatRequest]:
        """Pick the provider for ``request.model`` and rewrite the model to the provider's own name."""
        if self.router is not None:
            return self.router.resolve(request)
        provider, model = self._target(request.model)
        return provider, request.model_copy(update={"model": model})

    def _target(self, address: str) -> tuple[Provider, str]:
        """The stack serving an address that is not a persona, and the model name to send it: through
        the router (deployments, groups) when configured, else ``provider/model`` split here."""
        if self.router is not None:
            return self.router.resolve_target(address), address
        found = self._addresses.get(address)
        if found is None:
            from .providers.registry import split_model

            found = split_model(address)
            if len(self._addresses) >= 1024:
                self._addresses.clear()
            self._addresses[address] = found
        provider_name, model = found
        return self._direct(provider_name), model

    def _direct(self, provider_name: str) -> Provider:
        """A directly addressed provider (no router), behind its per-attempt meter when metered."""
        provider = self.provider(provider_name)
        if self.meter is not None:  # the attempt leaf of a directly addressed provider
            metered = self._metered.get(provider_name)
            if metered is None or metered.inner is not provider:
                metered = self._metered[provider_name] = self.meter.leaf(provider)
            provider = metered
        return provider

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

    async def send(self, request: ChatRequest, *, payer: CallContext | None = None) -> ChatResponse:
        """Answer a canonical request (the gateway's entry point; ``chat`` builds one for you).

        ``payer`` is who pays and under which limits (see the class docstring); metered calls copy the
        ``x-ratelimit-*`` of the limits counted to ``response.rate_limits``. Without a meter nothing is
        charged and ``payer`` is not used."""
        provider, resolved = self.resolve(request)
        return await self._answer(resolved, payer, provider.chat)

    async def _answer(self, request: Asked, payer: CallContext | None,
                      call: Callable[[Asked], Awaitable[Answer]]) -> Answer:
        """One answered call (chat or embeddings: ``call(request)``), admitted and paid for when the
        client is metered; the answer carries the ``x-ratelimit-*`` of the limits it counted against."""
        meter = self._meter
        if meter is None:
            return await call(request)
        # The meter's per-request protocol: admitted once (the payer's, persona's and team's limits),
        # released on every way out with the error it ended on (a budget refusal gives its admission
        # back); no coroutine for an admission or release that has nothing to wait for (no RPM/TPM
        # applies): the common call pays none of them.
        ctx, config = _payer(payer), self.config
        admission = meter.admit_now(request, ctx, config) or await meter.admit(request, ctx, config)
        try:
            with admission.paying():
                answer = await call(request)
            answer.rate_limits = admission.rate_limits()
        except BaseException as exc:
            if not meter.release_now(admission):
                await meter.release(admission, exc)
            raise
        if not meter.release_now(admission):
            await meter.release(admission, None)
        return answer

    async def embed(self, request: EmbeddingRequest, *, payer: CallContext | None = None) -> EmbeddingResponse:
        """Vectors for ``request.inputs`` from the model ``request.model`` addresses.

        Resolved like :meth:`send` (``provider/model``, or a deployment or group through the router; a
        persona is a chat policy and is refused), so retries and breakers apply. With a meter, ``payer``
        (who pays, under which limits; it receives the outcome: ``cost_usd``, ``rate_headers``…) is
        admitted once against the request's rate limits and every attempt is metered by the routing
        stack's leaf, as a chat attempt is: budget hold, settlement, ledger row.
        """
        provider, model = self._target(request.model)
        resolved = request if model == request.model else request.model_copy(update={"model": model})
        return await self._answer(resolved, payer, provider.embed)

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens of a canonical request, through the same routing as :meth:`send`.

        Exact where the serving provider counts (Anthropic, Gemini: their free counting endpoints), an
        offline ``o200k_base`` count otherwise; a persona counts with its first usable target. Not
        metered: counting is free upstream and makes no ledger row.
        """
        provider, resolved = self.resolve(request)
        return await provider.count_tokens(resolved)

    def send_stream(self, request: ChatRequest, *, payer: CallContext | None = None) -> RoutedStream:
        """Stream the answer to a canonical request; closing the iterator cancels the upstream call.

        The returned stream has an ``attempts`` attribute (``routing.attempts_of(stream)``): the
        upstream attempts made so far, including the serving one once the first event has arrived; and,
        when metered, ``rate_limits`` (the ``x-ratelimit-*`` of the limits counted) from the moment the
        request is admitted, before the first event. ``payer`` is as for :meth:`send`.
        """
        if self._meter is not None:  # decided now: the stream is consumed later, maybe by other tasks
            payer = _payer(payer)
        return _routed_stream()(lambda routed: self._stream(routed, request, payer))

    async def _stream(
        self, routed: RoutedStream, request: ChatRequest, payer: CallContext | None
    ) -> AsyncIterator[StreamEvent]:
        provider, resolved = self.resolve(request)
        meter = self._meter
        if meter is None:
            inner = provider.stream(resolved)
            routed.follow(inner)
            try:
                async for event in inner:
                    yield event
            finally:
                routed.settle()
                await inner.aclose()  # type: ignore[attr-defined]
            return
        # Admitted and released as in ``_answer`` (written out: a generator-based context manager would
        # cost each stream two more coroutines).
        ctx, config = _payer(payer), self.config
        admission = meter.admit_now(resolved, ctx, config) or await meter.admit(resolved, ctx, config)
        error: BaseException | None = None
        try:
            routed.report_rates(admission.rate_limits)
            inner = provider.stream(resolved)
            routed.follow(inner)
            paying = admission.paying()  # one object, entered around each step in turn
            try:
                while True:
                    with paying:  # around each step only (see ``Admission.paying``)
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
            if not meter.release_now(admission):
                await meter.release(admission, error)

    @property
    def config(self) -> Config | None:
        """The routing configuration in force (a hot reload replaces it), None without a router."""
        return self.router.config if self.router is not None else None

    async def chat(
        self,
        *,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
        payer: CallContext | None = None,
        **params: Any,
    ) -> ChatResponse:
        return await self.send(self.build_request(model, messages, tools, **params), payer=payer)

    async def stream(
        self,
        *,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
        payer: CallContext | None = None,
        **params: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        async for event in self.send_stream(self.build_request(model, messages, tools, **params), payer=payer):
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


@functools.cache
def _routed_stream() -> type[RoutedStream]:
    """``routing.attempts.RoutedStream``, imported on first use (routing is heavy to load) and then
    kept: an import statement would cost every stream its look-ups again."""
    from .routing.attempts import RoutedStream

    return RoutedStream


def _payer(payer: CallContext | None) -> CallContext:
    """Who pays for a metered call: ``payer``, else the one of an active ``money.metering.call_context``
    block (how SDK code named a payer before ``payer=``), else an anonymous payer."""
    if payer is not None:
        return payer
    from .money.metering import CallContext, current_context

    return current_context() or CallContext()


class SyncClient:
    """Blocking wrapper: runs an event loop in a private thread so it works inside other loops too.

    ``chat`` and ``stream`` take the arguments of :class:`Client`'s, ``payer=`` included."""

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
