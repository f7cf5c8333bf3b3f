"""A wire-faithful fake of the OpenAI API: chat completions (plain and SSE), models and embeddings.

Responses, chunks and error bodies copy the shapes api.openai.com sends, field for field, so the
official ``openai`` SDK parses them; ``tests/sdk_fidelity`` holds the fake to that.

Prompt caching is simulated deterministically for requests with a ``prompt_cache_key``: the longest
prefix of (tools, messages) an earlier request with the same model and key sent is reported as
``prompt_tokens_details.cached_tokens`` (~4 bytes of JSON per token, no minimum length), on top of the
reply's own input tokens.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import itertools
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from .base import FakeUpstream
from .fields import openai_error
from .script import Fault, Reply, Script, ToolCallSpec

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "o3-mini", "text-embedding-3-small"]

# OpenAI's error ``type`` per status, and the ``code`` it usually carries.
_STATUS_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
# Script ``error_type`` values that OpenAI spells as a ``code`` rather than a ``type``.
_CODES = {
    "context_length_exceeded", "rate_limit_exceeded", "insufficient_quota", "model_not_found",
    "invalid_api_key", "content_policy_violation", "unsupported_parameter", "unsupported_value",
}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def status_error(fault: Fault) -> tuple[dict[str, Any], dict[str, str]]:
    type_, code = _STATUS_TYPES.get(fault.status, ("server_error", None))
    if fault.error_type in _CODES:
        code = fault.error_type
        if code == "context_length_exceeded":
            type_ = "invalid_request_error"
    elif fault.error_type:
        type_ = fault.error_type
    headers = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
        headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
    return error_body(fault.message, type_, code), headers


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def embedding(text: str, dims: int) -> list[float]:
    """A deterministic unit vector derived from the text, so equal inputs embed equally."""
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(b / 255.0) - 0.5 for b in raw[: dims * 4 : 4]]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


def _cut(frames: list[dict[str, Any]], chunks: int) -> int:
    """How many frames carry the first ``chunks`` content deltas (text or tool arguments), so a fault
    strikes after them. Asking for more than the answer has still stops before the finish chunk."""
    if chunks <= 0:
        return 0
    seen = 0
    for i, frame in enumerate(frames):
        choices = frame.get("choices") or [{}]
        delta = choices[0].get("delta") or {}
        if delta.get("content") or any((t.get("function") or {}).get("arguments") for t in delta.get("tool_calls") or []):
            seen += 1
            if seen == chunks:
                return i + 1
    finish = next(i for i, f in enumerate(frames) if f["choices"] and f["choices"][0]["finish_reason"])
    return finish


class FakeOpenAI(FakeUpstream):
    provider = "openai"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids = itertools.count(1)
        self._cache: set[str] = set()  # (model, prompt_cache_key, prefix) hashes seen so far

    def reset(self) -> None:
        super().reset()
        self._cache.clear()

    def _cached_tokens(self, body: dict[str, Any]) -> int:
        """Tokens of the longest earlier-seen prefix under this request's prompt_cache_key; records its own."""
        key = body.get("prompt_cache_key")
        if not isinstance(key, str):
            return 0
        running = hashlib.sha256(orjson.dumps([body.get("model"), key]))
        size, best = 0, 0
        for item in [*(body.get("tools") or []), *body["messages"]]:
            raw = orjson.dumps(item)
            running.update(raw)
            size += len(raw)
            digest = running.hexdigest()
            if digest in self._cache:
                best = size // 4
            self._cache.add(digest)
        return best

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.get("/v1/models", self.list_models),
            web.get("/v1/models/{model}", self.get_model),
            web.post("/v1/embeddings", self.embeddings),
            web.post("/v1/responses", self.responses),
        ]

    # -- auth -----------------------------------------------------------------------------------
    def check_auth(self, request: web.Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    def auth_error(self, request: web.Request | None = None) -> web.Response:
        header = request.headers.get("authorization", "") if request is not None else "x"
        if not header:
            body = error_body(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                "username) if you're accessing the API from your browser and are prompted for a username. You "
                "can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        else:
            given = header.removeprefix("Bearer ").strip()
            masked = f"{given[:3]}*****{given[-4:]}" if len(given) > 8 else "*****"
            body = error_body(
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return self.json_response(body, status=401, headers=self._headers())

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Same recording as the base, but the 401 body depends on whether a key was sent at all.
        response = await super()._record(request, handler)
        if response.status == 401 and not self.check_auth(request):
            return self.auth_error(request)
        return response

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{next(self._ids):024x}", "openai-processing-ms": "12"}

    # -- models and embeddings -------------------------------------------------------------------
    @staticmethod
    def _model_obj(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}

    async def list_models(self, request: web.Request) -> web.Response:
        body = {"object": "list", "data": [self._model_obj(m) for m in MODELS]}
        return self.json_response(body, headers=self._headers())

    async def get_model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in MODELS:
            body = error_body(f"The model '{model}' does not exist", "invalid_request_error", "model_not_found",
                              "model")
            return self.json_response(body, status=404, headers=self._headers())
        return self.json_response(self._model_obj(model), headers=self._headers())

    async def embeddings(self, request: web.Request) -> web.Response:
        body = self.requests[-1].body
        script = self.next_script()
        if isinstance(script, Fault) and script.kind == "status":
            payload, headers = status_error(script)
            return self.json_response(payload, status=script.status, headers={**self._headers(), **headers})
        if not isinstance(body, dict) or "input" not in body or "model" not in body:
            return self._bad_request("'input' and 'model' are required", "input")
        inputs = body["input"]
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        dims = int(body.get("dimensions") or 1536)
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += max(1, len(text.split()))
            vector = embedding(text, dims)
            value: Any = vector
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        payload = {
            "object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self.json_response(payload, headers=self._headers())

    def _bad_request(self, message: str, param: str) -> web.Response:
        return self.json_response(
            error_body(message, "invalid_request_error", None, param), status=400, headers=self._headers()
        )

    async def responses(self, request: web.Request) -> web.StreamResponse:
        from .openai_responses import serve

        return await serve(self, request)

    # -- chat completions -------------------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        if not isinstance(body, dict):
            return self._bad_request("We could not parse the JSON body of your request.", "body")
        if (unknown := openai_error(body)) is not None:
            return self.json_response(unknown, status=400, headers=self._headers())
        if not isinstance(body.get("model"), str):
            return self._bad_request("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("'messages' must contain at least one message", "messages")
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer", "user", "assistant",
                                                                      "tool", "function"):
                return self._bad_request(f"Invalid value for 'messages[{i}].role'", f"messages[{i}].role")
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        script: Script = await self.apply_pre_fault(self.next_script())
        if isinstance(script, Fault) and (script.kind == "status" or (script.kind == "stream_error" and not stream)):
            payload, headers = status_error(script)
            return self.json_response(payload, status=script.status, headers={**self._headers(), **headers})
        if isinstance(script, Fault) and script.kind == "malformed_json":
            if stream:
                resp = await self._open_stream(request)
                await resp.write(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
                await resp.write_eof()
                return resp
            return web.Response(body=b'{"id": "chatcmpl-broken", "choices": [', status=200,
                                content_type="application/json", headers=self._headers())
        reply = script.then or Reply() if isinstance(script, Fault) else script
        assert isinstance(reply, Reply)
        if cached := self._cached_tokens(body):
            reply = dataclasses.replace(reply, input_tokens=reply.input_tokens + cached,
                                        cached_input_tokens=reply.cached_input_tokens + cached)
        model = reply.model or body["model"]
        text = _text_of(next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")) \
            if reply.echo else reply.text
        calls = self._calls(reply)
        if not stream:
            return await self._plain(request, script, self._completion(reply, model, text, calls))
        frames = self._frames(reply, model, text, calls, include_usage)
        return await self._stream(request, script, frames)

    def _calls(self, reply: Reply) -> list[tuple[str, ToolCallSpec]]:
        out = []
        for i, call in enumerate(reply.tool_calls):
            digest = hashlib.sha1(f"{call.name}:{i}:{next(self._ids)}".encode()).hexdigest()[:24]
            out.append((call.id or f"call_{digest}", call))
        return out

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _completion(self, reply: Reply, model: str, text: str | None, calls: list[tuple[str, ToolCallSpec]]
                    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function",
                 "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()}}
                for cid, c in calls
            ]
        return {
            "id": f"chatcmpl-{next(self._ids):029d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": self._usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def _frames(self, reply: Reply, model: str, text: str | None, calls: list[tuple[str, ToolCallSpec]],
                include_usage: bool) -> list[dict[str, Any]]:
        """The chunk objects OpenAI would send for this reply, in order."""
        base = {"id": f"chatcmpl-{next(self._ids):029d}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model, "service_tier": "default",
                "system_fingerprint": "fp_fake"}
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                    **extra}

        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        frames += [chunk({"content": piece}) for piece in self.split_text(text or "", reply.chunks)]
        for index, (cid, call) in enumerate(calls):
            frames.append(chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                                 "function": {"name": call.name, "arguments": ""}}]}))
            args = orjson.dumps(call.arguments).decode()
            for piece in self.split_text(args, 3):
                frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        frames.append(chunk({}, reply.finish_reason))
        if include_usage:
            frames.append({**base, "choices": [], "usage": self._usage(reply)})
        return frames

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", **self._headers(),
        })
        await resp.prepare(request)
        return resp

    async def _stream(self, request: web.Request, script: Script, frames: list[dict[str, Any]]
                      ) -> web.StreamResponse:
        resp = await self._open_stream(request)
        limit = _cut(frames, script.after_chunks) if isinstance(script, Fault) else len(frames)
        for payload in frames[:limit]:
            await resp.write(b"data: " + orjson.dumps(payload) + b"\n\n")
        if isinstance(script, Fault):
            if script.kind == "disconnect":
                await asyncio.sleep(0.01)  # let the sent chunks leave before the reset
                self.drop_connection(request)
                return resp
            if script.kind == "stall":
                await self._idle(request, script.delay)
                self.drop_connection(request)
                return resp
            if script.kind == "stream_error":
                type_ = script.error_type or "server_error"
                await resp.write(b"data: " + orjson.dumps(error_body(script.message, type_)) + b"\n\n")
                await resp.write_eof()
                return resp
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    @staticmethod
    async def _idle(request: web.Request, delay: float) -> None:
        """Go silent for ``delay`` seconds, giving up early once the client has hung up."""
        deadline = asyncio.get_running_loop().time() + delay
        while asyncio.get_running_loop().time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.02)

    async def _plain(self, request: web.Request, script: Script, payload: dict[str, Any]) -> web.StreamResponse:
        if not isinstance(script, Fault) or script.kind not in ("stall", "disconnect"):
            return self.json_response(payload, headers=self._headers())
        raw = orjson.dumps(payload)
        resp = web.StreamResponse(status=200, headers={"content-type": "application/json", **self._headers()})
        resp.content_length = len(raw)
        if script.kind == "disconnect" and script.after_chunks == 0:
            self.drop_connection(request)
            return resp
        await resp.prepare(request)
        await resp.write(raw[: len(raw) // 2])
        if script.kind == "stall":
            await self._idle(request, script.delay)
        else:
            await asyncio.sleep(0.01)
        self.drop_connection(request)
        return resp
