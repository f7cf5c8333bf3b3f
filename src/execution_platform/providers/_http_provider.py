"""Shared request/stream flow for providers that speak HTTP + JSON + SSE through a codec module.

A concrete adapter supplies the codec, the URL and the auth headers; everything else — pooled
connections, timeouts, error mapping, SSE parsing, stream completion checks and closing the upstream
connection when the caller stops listening — lives here once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import orjson
from multidict import CIMultiDict

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
from .http import Deadline, HttpClient, Target, Timeouts, shared_client, transport_error

_UNSET = object()


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
        # Each URL's encoded request head, made once per provider and key rather than per call.
        self._targets: dict[str, Target] = {}
        self._targets_key: object = _UNSET
        if name:
            self.name = name

    # -- hooks for subclasses -------------------------------------------------------------------
    def url(self, model: str, *, stream: bool) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        """The adapter's own headers (auth); a function of ``api_key`` and fixed configuration only."""
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

    def _all_headers(self) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict({"content-type": "application/json", "accept": "application/json"})
        headers.update(self.headers())
        headers.update(self._extra_headers)
        return headers

    def _target(self, url: str) -> Target:
        """``url``'s origin and encoded request head with this provider's headers, made once per key."""
        if self._targets_key is not self.api_key:  # a new key: the heads carrying the old one go
            self._targets = {}
            self._targets_key = self.api_key
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= 64:  # one per endpoint and model at most; bounded all the same
                self._targets.clear()
            target = self._targets[url] = Target(url, self._all_headers())
        return target

    async def _post(self, url: str, payload: bytes, *, what: str) -> bytes:
        """POST ``payload`` and read the whole answer; an error status raises, mapped by the codec.

        Bounds: the answer's headers within ``read`` (connecting included), its body within ``read``
        after them, the whole within ``total``; one timer moved between the two phases.
        """
        loop = asyncio.get_running_loop()
        t = self.timeouts
        end = loop.time() + t.total
        try:
            target = self._target(url)
            with Deadline(loop, min(t.read, t.total)) as deadline:
                resp = await self._http.h1(loop).post(target, payload, connect_timeout=t.connect)
                raw = resp.read_now()  # usually in with the head: then nothing left to wait for
                if raw is None:
                    deadline.reschedule(max(0.0, min(t.read, end - loop.time())))
                    try:
                        raw = await resp.read()
                    except BaseException:
                        resp.close()
                        raise
        except Exception as exc:
            raise transport_error(exc, self.name, what) from exc
        if resp.status >= 400:
            raise self._error(resp.status, raw, resp.headers)
        return raw

    def _error(self, status: int, raw: bytes, headers: Any) -> EPError:
        err = self.codec.decode_error(status, raw, headers)
        err.provider = self.name
        return err

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self._require_key()
        payload = orjson.dumps(self.body(request, stream=False))
        raw = await self._post(self.url(request.model, stream=False), payload, what="waiting for the answer")
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
        raw = await self._post(url, orjson.dumps(payload), what=f"waiting for {what}")
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
        t = self.timeouts
        started = loop.time()
        end = started + t.total
        try:
            # Our deadlines bound the call: the headers within ``read`` (connecting included), the first chunk within what is left of it, every later chunk
            # within ``stream_idle``, the whole stream within ``total``. A deadline, not ``wait_for``:
            # the same TimeoutError without a task per call.
            target = self._target(self.url(request.model, stream=True))
            with Deadline(loop, min(t.read, t.total)):
                resp = await self._http.h1(loop).post(target, payload, connect_timeout=t.connect)
        except Exception as exc:
            raise transport_error(exc, self.name, "connecting") from exc
        completed = False
        emitted = False
        finished = False
        try:
            if resp.status >= 400:
                try:
                    with Deadline(loop, max(0.001, min(t.read, end - loop.time()))):
                        raw = await resp.read()
                except Exception as exc:
                    raise transport_error(exc, self.name, "reading the error") from exc
                raise self._error(resp.status, raw, resp.headers)
            parser = SSEParser()
            wire = self.wire_codec(request)
            decoder = (self.stream_decoder(request) if wire is None
                       else wire.WireTap(request.model, include_usage=request.wire.include_usage))  # type: ignore[union-attr]
            wait = max(0.001, min(t.stream_idle, started + t.read - loop.time(), end - loop.time()))
            try:
                while True:
                    # One timer per read that waits, scoped to the read (never across a ``yield``: the
                    # consumer may change tasks); bytes already in are taken with no timer at all. The
                    # loop reads the chunks itself, no generator hop per chunk.
                    chunk = resp.readany_now()
                    if chunk is None:
                        with Deadline(loop, wait):
                            chunk = await resp.readany()
                    if not chunk:
                        break
                    if wire is not None:  # forwarded frames: one event per upstream read (see coalesce)
                        for event in coalesce(decoder.feed_bytes(chunk)):
                            emitted = True
                            finished = finished or isinstance(event, FinishEvent)
                            yield event
                    else:
                        for sse in parser.feed(chunk):
                            for event in decoder.feed(sse):
                                emitted = True
                                finished = finished or isinstance(event, FinishEvent)
                                yield event
                    wait = min(t.stream_idle, end - loop.time())
                    if wait <= 0:
                        raise TimeoutError
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
