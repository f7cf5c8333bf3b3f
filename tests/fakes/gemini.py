"""A fake Generative Language API (v1beta) speaking Gemini's exact wire format.

Routes (under ``/v1beta`` and ``/v1``): ``models/{model}:generateContent``, ``:streamGenerateContent`` (``alt=sse``), ``:countTokens``,
``:embedContent``, ``:batchEmbedContents``, ``GET models`` and ``GET models/{model}``. Auth is the
``x-goog-api-key`` header or the ``key`` query parameter, as Google accepts both. Errors use Google's
``{"error": {"code", "message", "status", "details"}}`` body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from typing import Any

import orjson
from aiohttp import web

from .base import FakeUpstream
from .fields import gemini_error
from .script import Fault, Reply, Script

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}
MODELS = [
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1048576, 65536),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1048576, 65536),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 1048576, 8192),
    ("text-embedding-004", "Text Embedding 004", 2048, 1),
]


def google_error(
    status: int, message: str, *, status_name: str | None = None, details: list[Any] | None = None
) -> dict:
    """Google's error body exactly as the API sends it."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": status_name
        or _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def embedding(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic unit-ish vector per text, so tests can compare embeddings."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


class FakeGemini(FakeUpstream):
    provider = "gemini"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids = itertools.count(1)

    # -- auth ---------------------------------------------------------------------------------------
    def check_auth(self, request: web.Request) -> bool:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        return key == self.api_key

    def auth_error(self) -> web.Response:
        # Google answers a wrong key with 400 INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID.
        return self.json_response(
            google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            ),
            status=400,
        )

    # -- routing ------------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        # google-genai >= 2 defaults to "v1"; our adapter uses "v1beta". Google serves both.
        routes: list[web.RouteDef] = []
        for version in ("v1beta", "v1"):
            routes += [
                web.get(f"/{version}/models", self._list_models),
                web.get(f"/{version}/models/{{model}}", self._get_model),
                web.post(f"/{version}/models/{{target}}", self._dispatch),
            ]
        return routes

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        if method in ("generateContent", "streamGenerateContent") and (unknown := gemini_error(body)) is not None:
            return self.json_response(unknown, status=400)
        if method == "streamGenerateContent" and request.query.get("alt") != "sse":
            # Without alt=sse Google streams one JSON array of response chunks.
            script = await self.apply_pre_fault(self.next_script())
            if isinstance(script, Fault):
                return self._fault_response(script) if script.kind == "status" else web.Response(status=500)
            return self.json_response(self._chunks(script, body, script.model or model))
        if method in ("generateContent", "streamGenerateContent"):
            stream = method == "streamGenerateContent"
            try:
                return await self._generate(request, model, body, stream=stream)
            except ConnectionResetError:  # the client went away (timeouts, cancellation): nothing to answer
                return web.Response(status=499)
        if method == "countTokens":
            contents = (
                body.get("contents") or (body.get("generateContentRequest") or {}).get("contents") or []
            )
            total = sum(self._count(c) for c in contents)
            return self.json_response(
                {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
            )
        if method == "embedContent":
            dims = int(body.get("outputDimensionality") or 8)
            return self.json_response(
                {"embedding": {"values": embedding(self._text(body.get("content")), dims)}}
            )
        if method == "batchEmbedContents":
            vectors = [
                {"values": embedding(self._text(r.get("content")), int(r.get("outputDimensionality") or 8))}
                for r in body.get("requests") or []
            ]
            return self.json_response({"embeddings": vectors})
        return self.json_response(google_error(404, f"Method {method!r} not found."), status=404)

    @staticmethod
    def _model_info(name: str, display: str, input_limit: int, output_limit: int) -> dict[str, Any]:
        embed = "embedding" in name
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": display,
            "description": display,
            "inputTokenLimit": input_limit,
            "outputTokenLimit": output_limit,
            "supportedGenerationMethods": (
                ["embedContent", "batchEmbedContents"]
                if embed
                else ["generateContent", "countTokens", "streamGenerateContent"]
            ),
            **({} if embed else {"temperature": 1.0, "topP": 0.95, "topK": 64, "thinking": True}),
        }

    async def _list_models(self, request: web.Request) -> web.Response:
        return self.json_response({"models": [self._model_info(*m) for m in MODELS]})

    async def _get_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        for model in MODELS:
            if model[0] == name:
                return self.json_response(self._model_info(*model))
        return self.json_response(
            google_error(404, f"models/{name} is not found for API version v1beta."), status=404
        )

    # -- text helpers -------------------------------------------------------------------------------
    @staticmethod
    def _text(content: Any) -> str:
        parts = (content.get("parts") or []) if isinstance(content, dict) else []
        return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))

    def _count(self, content: Any) -> int:
        return max(1, len(self._text(content).split())) if self._text(content) else 0

    def _echo(self, body: dict[str, Any]) -> str:
        for content in reversed(body.get("contents") or []):
            if content.get("role", "user") == "user":
                text = self._text(content)
                if text:
                    return text
        return ""

    # -- rendering ----------------------------------------------------------------------------------
    def _parts(
        self, reply: Reply, body: dict[str, Any]
    ) -> tuple[list[dict], list[str], list[dict], str | None]:
        """(thought parts, text pieces, function-call parts, signature for the first text part).

        The thought signature rides on the first part after the thoughts, as Gemini 3 does."""
        thoughts: list[dict[str, Any]] = []
        signature = None
        if reply.thinking is not None:
            thoughts.append({"text": reply.thinking, "thought": True})
            signature = (
                reply.thinking_signature
                or base64.b64encode(hashlib.sha256(reply.thinking.encode()).digest()).decode()
            )
        text = self._echo(body) if reply.echo else (reply.text or "")
        pieces = self.split_text(text, reply.chunks) if text else []
        calls: list[dict[str, Any]] = []
        for spec in reply.tool_calls:
            call: dict[str, Any] = {"name": spec.name, "args": spec.arguments}
            if spec.id:
                call["id"] = spec.id
            calls.append({"functionCall": call})
        if signature is not None and not pieces:
            if calls:
                calls[0]["thoughtSignature"] = signature
            else:
                thoughts[0]["thoughtSignature"] = signature
        return thoughts, pieces, calls, (signature if pieces else None)

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        thoughts = reply.reasoning_tokens
        candidates = max(0, reply.output_tokens - thoughts)
        usage: dict[str, Any] = {
            "promptTokenCount": reply.input_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": reply.input_tokens + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
        }
        if reply.cached_input_tokens:
            usage["cachedContentTokenCount"] = reply.cached_input_tokens
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _envelope(self, parts: list[dict], model: str, response_id: str) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
            "modelVersion": model,
            "responseId": response_id,
        }

    def _chunks(self, reply: Reply, body: dict[str, Any], model: str) -> list[dict[str, Any]]:
        """The whole answer as stream chunks; the last one carries finishReason and usage."""
        response_id = self._new_id()
        thoughts, pieces, calls, signature = self._parts(reply, body)
        chunks = [self._envelope([t], model, response_id) for t in thoughts]
        for i, piece in enumerate(pieces):
            part: dict[str, Any] = {"text": piece}
            if i == 0 and signature is not None:
                part["thoughtSignature"] = signature
            chunks.append(self._envelope([part], model, response_id))
        if calls:
            chunks.append(self._envelope(calls, model, response_id))  # parallel calls arrive together
        if not chunks:
            chunks.append(self._envelope([{"text": ""}], model, response_id))
        last = chunks[-1]
        last["candidates"][0]["finishReason"] = _FINISH[reply.finish_reason]
        last["usageMetadata"] = self._usage(reply)
        return chunks

    def _whole(self, reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
        thoughts, pieces, calls, signature = self._parts(reply, body)
        parts = list(thoughts)
        if pieces:
            text_part: dict[str, Any] = {"text": "".join(pieces)}
            if signature is not None:
                text_part["thoughtSignature"] = signature
            parts.append(text_part)
        parts.extend(calls)
        answer = self._envelope(parts, model, self._new_id())
        answer["candidates"][0]["finishReason"] = _FINISH[reply.finish_reason]
        answer["usageMetadata"] = self._usage(reply)
        return answer

    def _new_id(self) -> str:
        return f"fake-gemini-{next(self._ids):06d}"

    def _fault_response(self, fault: Fault) -> web.Response:
        headers: dict[str, str] = {}
        details: list[Any] = []
        status, message, name = fault.status, fault.message, None
        kind = (fault.error_type or "").lower()
        if "context_length" in kind:
            status = 400
            message = (
                "The input token count (1201337) exceeds the maximum number of tokens allowed (1048576)."
            )
        elif "overloaded" in kind:
            status, message = 503, "The model is overloaded. Please try again later."
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fault.retry_after:g}s"}
            )
        if status == 429 and fault.message == "injected fault":
            message = "You exceeded your current quota, please check your plan and billing details."
        return self.json_response(
            google_error(status, message, status_name=name, details=details), status=status, headers=headers
        )

    async def _generate(
        self, request: web.Request, model: str, body: dict[str, Any], *, stream: bool
    ) -> web.StreamResponse:
        script: Script = await self.apply_pre_fault(self.next_script())
        if isinstance(script, Fault):
            if script.kind == "status":
                return self._fault_response(script)
            if script.kind == "malformed_json":
                if stream:
                    resp = await self.sse_response(request)
                    await resp.write(b'data: {"candidates": [{"content": \n\n')
                    await resp.write_eof()
                    return resp
                return web.Response(body=b'{"candidates": [', status=200, content_type="application/json")
        reply = script.then if isinstance(script, Fault) else script
        reply = reply or Reply()
        model_name = reply.model or model
        if not stream:
            if isinstance(script, Fault) and script.kind == "disconnect":
                self.drop_connection(request)
                return web.Response(status=500)
            if isinstance(script, Fault) and script.kind == "stall":
                await asyncio.sleep(script.delay)
            return self.json_response(self._whole(reply, body, model_name))
        chunks = self._chunks(reply, body, model_name)
        resp = await self.sse_response(request)
        fault = script if isinstance(script, Fault) else None
        # After N content chunks, but never after the finish: the last chunk carries finishReason.
        at = min(fault.after_chunks, len(chunks) - 1) if fault else -1
        for i, chunk in enumerate([*chunks, None]):
            if fault is not None and i == at:
                if fault.kind == "disconnect":
                    await asyncio.sleep(0.05)  # let the client read what was sent, then reset
                    self.drop_connection(request)
                    return resp
                if fault.kind == "stall":
                    await asyncio.sleep(fault.delay)
                if fault.kind == "stream_error":
                    await resp.write(self._sse(google_error(fault.status, fault.message)))
                    await resp.write_eof()
                    return resp
            if chunk is not None:
                await resp.write(self._sse(chunk))
        await resp.write_eof()
        return resp

    @staticmethod
    def _sse(payload: dict[str, Any]) -> bytes:
        """Gemini frames its SSE with CRLF line endings."""
        return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"
