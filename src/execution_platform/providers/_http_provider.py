"""Shared request/stream flow for providers that speak HTTP + JSON + SSE through a codec module.

A concrete adapter supplies the codec, the URL and the auth headers; everything else — pooled
connections, timeouts, error mapping, SSE parsing, stream completion checks and closing the upstream
connection when the caller stops listening — lives here once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import aiohttp
import orjson

from ..codecs.sse import SSEParser
from ..codecs.wire import coalesce
from ..errors import (
    ConfigurationError,
    EPError,
    StreamInterruptedError,
    UpstreamServerError,
    register_secret,
)
from ..model import Capabilities, ChatRequest, ChatResponse, EmbeddingResponse, FinishEvent, StreamEvent
from .base import Provider
from .http import Deadline, HttpClient, Timeouts, client_timeout, iter_chunks, shared_client, transport_error


class HTTPProvider(Provider):
    """Base for OpenAI-, Anthropic- and Gemini-style HTTP adapters."""

    codec: ModuleType
    default_base_url: str = ""
    key_env_var: str = ""
    # May answer a same-format client in the upstream's own bytes (``ChatRequest.wire``). Off for an
    # adapter that rewrites its upstream's answer (the local engine's grammar-made tool calls).
    wire_answers: bool = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeouts: Timeouts | None = None,
        http: HttpClient | None = None,
        capabilities: dict[str, Capabilities] | None = None,
        name: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.api_key = api_key
        register_secret(api_key)
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeouts = timeouts or Timeouts()
        self._http = http or shared_client()
        self._capability_overrides = capabilities or {}
        self._extra_headers = extra_headers or {}
        if name:
            self.name = name

    # -- hooks for subclasses -------------------------------------------------------------------
    def url(self, model: str, *, stream: bool) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def codec_for(self, model: str) -> ModuleType:
        """The wire codec for ``model`` (one adapter may speak two APIs of its provider)."""
        return self.codec

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return self.codec_for(request.model).encode_request(request, stream=stream)

    def stream_decoder(self, request: ChatRequest) -> Any:
        return self.codec_for(request.model).StreamDecoder(model=request.model)

    def default_capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def wire_codec(self, request: ChatRequest) -> ModuleType | None:
        """The codec whose bytes the client may get as they are: its format is the client's own."""
        hint = request.wire
        if hint is None or not self.wire_answers:
            return None
        codec = self.codec_for(request.model)
        return codec if getattr(codec, "FORMAT", None) == hint.format and hasattr(codec, "WireTap") else None

    # -- Provider -------------------------------------------------------------------------------
    def capabilities(self, model: str) -> Capabilities:
        return self._capability_overrides.get(model) or self.default_capabilities(model)

    def _require_key(self) -> None:
        if not self.api_key:
            raise ConfigurationError(
                f"no API key for provider '{self.name}': set {self.key_env_var} (or configure it in the YAML file)",
                provider=self.name,
            )

    def _all_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(self.headers())
        headers.update(self._extra_headers)
        return headers

    def _error(self, status: int, raw: bytes, headers: Any) -> EPError:
        err = self.codec.decode_error(status, raw, headers)
        err.provider = self.name
        return err

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self._require_key()
        payload = orjson.dumps(self.body(request, stream=False))
        session = self._http.session()
        try:
            async with session.post(
                self.url(request.model, stream=False),
                data=payload,
                headers=self._all_headers(),
                timeout=client_timeout(self.timeouts),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise self._error(resp.status, raw, resp.headers)
        except EPError:
            raise
        except Exception as exc:
            raise transport_error(exc, self.name, "waiting for the answer") from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamServerError(
                f"{self.name}: upstream answered with malformed JSON", provider=self.name, upstream_status=200
            ) from exc
        try:
            response = self.codec_for(request.model).decode_response(data)
        except EPError as exc:
            exc.provider = self.name
            raise
        except Exception as exc:
            raise UpstreamServerError(
                f"{self.name}: unexpected response shape: {type(exc).__name__}", provider=self.name
            ) from exc
        response.provider = self.name
        wire = self.wire_codec(request)
        if wire is not None:
            response.set_wire_body((wire.FORMAT, raw))
        return response

    async def post_json(self, url: str, payload: dict[str, Any], *, what: str) -> Any:
        """One authenticated JSON call beside chat (token counting); errors mapped like chat's."""
        self._require_key()
        session = self._http.session()
        try:
            async with session.post(
                url, data=orjson.dumps(payload), headers=self._all_headers(), timeout=client_timeout(self.timeouts)
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise self._error(resp.status, raw, resp.headers)
        except EPError:
            raise
        except Exception as exc:
            raise transport_error(exc, self.name, f"waiting for {what}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamServerError(f"{self.name}: malformed {what} answer", provider=self.name) from exc

    async def post_embeddings(
        self, url: str, payload: dict[str, Any], decode: Callable[[dict[str, Any]], EmbeddingResponse]
    ) -> EmbeddingResponse:
        """An embeddings call: the adapter's codec encoded ``payload`` and ``decode``s the answer."""
        data = await self.post_json(url, payload, what="embeddings")
        try:
            response = decode(data)
        except Exception as exc:
            raise UpstreamServerError(f"{self.name}: unexpected embeddings answer", provider=self.name) from exc
        response.provider = self.name
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self._require_key()
        payload = orjson.dumps(self.body(request, stream=True))
        loop = asyncio.get_running_loop()  # asked once per stream (a getpid on Python 3.11), see Deadline
        session = self._http.session(loop)
        timeout = aiohttp.ClientTimeout(
            total=self.timeouts.total, connect=self.timeouts.connect, sock_connect=self.timeouts.connect,
            sock_read=max(self.timeouts.read, self.timeouts.stream_idle),
        )
        started = time.monotonic()
        try:
            # sock_read above is stretched to the idle bound, so the wait for the headers (time to first
            # byte) gets its own deadline from ``read``.
            # A deadline, not ``wait_for``: the same TimeoutError without a task per call.
            async with Deadline(loop, self.timeouts.read):
                resp = await session.post(
                    self.url(request.model, stream=True), data=payload, headers=self._all_headers(), timeout=timeout
                )
        except Exception as exc:
            raise transport_error(exc, self.name, "connecting") from exc
        completed = False
        emitted = False
        finished = False
        try:
            if resp.status >= 400:
                raw = await resp.read()
                raise self._error(resp.status, raw, resp.headers)
            parser = SSEParser()
            wire = self.wire_codec(request)
            decoder = (self.stream_decoder(request) if wire is None
                       else wire.WireTap(request.model, include_usage=request.wire.include_usage))  # type: ignore[union-attr]
            first_wait = max(0.001, self.timeouts.read - (time.monotonic() - started))
            try:
                chunks = iter_chunks(resp, self.timeouts.stream_idle, loop).__aiter__()
                waiting_first = True
                while True:
                    # The time-to-first-token deadline applies to the first chunk only; the loop reads
                    # the chunks itself rather than through a wrapping generator (one hop less each).
                    try:
                        if waiting_first:
                            waiting_first = False
                            async with Deadline(loop, first_wait):  # one step: never across a yield
                                chunk = await chunks.__anext__()
                        else:
                            chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    if wire is not None:  # forwarded frames: one event per upstream read (see coalesce)
                        for event in coalesce(decoder.feed_bytes(chunk)):
                            emitted = True
                            finished = finished or isinstance(event, FinishEvent)
                            yield event
                        continue
                    for sse in parser.feed(chunk):
                        for event in decoder.feed(sse):
                            emitted = True
                            finished = finished or isinstance(event, FinishEvent)
                            yield event
                rest = (decoder.flush() if wire is not None
                        else (event for sse in parser.flush() for event in decoder.feed(sse)))
                for event in rest:
                    emitted = True
                    finished = finished or isinstance(event, FinishEvent)
                    yield event
                for event in decoder.finish():
                    finished = finished or isinstance(event, FinishEvent)
                    yield event
            except EPError:
                raise
            except Exception as exc:
                if isinstance(exc, orjson.JSONDecodeError | ValueError | KeyError | TypeError):
                    raise UpstreamServerError(
                        f"{self.name}: malformed stream event", provider=self.name
                    ) from exc
                err = transport_error(exc, self.name, "while streaming" if emitted else "before the first token")
                if emitted:
                    raise StreamInterruptedError(err.message, provider=self.name) from exc
                raise err from exc
            if not finished:
                raise StreamInterruptedError(
                    f"{self.name}: stream ended before the model finished", provider=self.name
                )
            completed = True
        finally:
            if completed:
                resp.release()
            else:
                resp.close()  # drop the connection: the upstream sees the client go away
