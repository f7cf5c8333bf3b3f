"""A fake Anthropic Messages API: ``POST /v1/messages`` (JSON or SSE) and ``/v1/messages/count_tokens``.

Bodies, headers and event sequences are written out by hand from the public API reference (not produced
by the codec under test), so a codec bug cannot hide behind a fake built from the same code.

Prompt caching is simulated deterministically: a request with ``cache_control`` breakpoints writes the
prefix (tools, then system, then messages) up to its last breakpoint and reads the longest prefix an
earlier request of the same model wrote, at ~4 bytes of JSON per token, with no minimum length; the
write lasts an hour when the last breakpoint says ``"ttl": "1h"``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from typing import Any

import orjson
from aiohttp import web

from .base import FakeUpstream
from .fields import anthropic_error
from .script import Fault, Reply

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ids = itertools.count(1)


def _request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's documented error envelope."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _request_id()}


class FakeAnthropic(FakeUpstream):
    provider = "anthropic"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: set[str] = set()  # prefix hashes written by earlier requests

    def reset(self) -> None:
        super().reset()
        self._cache.clear()

    def _cache_tokens(self, body: dict[str, Any]) -> tuple[int, int, bool]:
        """(read, written, written for an hour) for this request's breakpoints; records what it writes."""
        blocks = _cacheable_blocks(body)
        marks = [i for i, (_, mark) in enumerate(blocks) if mark is not None]
        if not marks:
            return 0, 0, False
        running = hashlib.sha256(str(body.get("model")).encode())
        keys: list[str] = []
        sizes: list[int] = []
        for raw, _ in blocks:
            running.update(raw)
            keys.append(running.hexdigest())
            sizes.append((sizes[-1] if sizes else 0) + len(raw))
        last = marks[-1]
        read = max((sizes[i] // 4 for i in range(last + 1) if keys[i] in self._cache), default=0)
        self._cache.update(keys[i] for i in marks)
        return read, sizes[last] // 4 - read, (blocks[last][1] or {}).get("ttl") == "1h"

    # -- auth -----------------------------------------------------------------------------------
    def check_auth(self, request: web.Request) -> bool:
        if request.headers.get("x-api-key") == self.api_key:
            return True
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def auth_error(self) -> web.Response:
        return self.json_response(error_body("authentication_error", "invalid x-api-key"), status=401)

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/messages", self._messages),
            web.post("/v1/messages/count_tokens", self._count_tokens),
        ]

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        # A stable stand-in for the tokenizer: roughly four characters per token, never zero.
        size = len(orjson.dumps([body.get("system"), body.get("messages"), body.get("tools")]))
        return self.json_response({"input_tokens": max(1, size // 4)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if (unknown := anthropic_error(body)) is not None:
            return self.json_response(unknown, status=400)
        stream = bool(body.get("stream"))
        script = await self.apply_pre_fault(self.next_script())
        if isinstance(script, Fault):
            if script.kind == "status" or (script.kind == "stream_error" and not stream):
                return self._status_fault(script)
            if script.kind == "malformed_json" and not stream:
                return web.Response(status=200, body=b'{"id": "msg_broken", "content": [', content_type="application/json")
            if script.kind in ("disconnect", "stall") and not stream:
                if script.kind == "stall":
                    await asyncio.sleep(script.delay)
                else:
                    self.drop_connection(request)
                    return web.Response(status=200)
                return self.json_response(self.message(script.then or Reply(), body))
            return await self._stream_fault(request, script, body)
        if stream:
            return await self._stream(request, self.events(script, body))
        return self.json_response(self.message(script, body), headers={"request-id": _request_id()})

    # -- faults ---------------------------------------------------------------------------------
    def _status_fault(self, fault: Fault) -> web.Response:
        if fault.kind == "stream_error":
            # Asked for JSON, an in-stream error becomes the same error as a plain HTTP answer.
            kind = fault.error_type or "overloaded_error"
            status = next((s for s, k in _ERROR_TYPES.items() if k == kind), 500)
        else:
            status = fault.status
            kind = fault.error_type or _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        message = fault.message
        if kind == "context_length_exceeded":
            kind, message = "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"
        headers = {"request-id": _request_id()}
        if fault.retry_after is not None:
            seconds = float(fault.retry_after)
            headers["retry-after"] = str(int(seconds)) if seconds.is_integer() else str(seconds)
        if status == 529:
            headers["x-should-retry"] = "true"
        return self.json_response(error_body(kind, message), status=status, headers=headers)

    async def _stream_fault(self, request: web.Request, fault: Fault, body: dict[str, Any]) -> web.StreamResponse:
        events = self.events(fault.then or Reply(), body)
        resp = await self.sse_response(request)
        if fault.kind == "malformed_json":
            await resp.write(b"event: message_start\ndata: {not json\n\n")
            await resp.write_eof()
            return resp
        cut = _cut(events, fault.after_chunks)
        for frame in events[:cut]:
            await resp.write(frame)
        if fault.kind == "disconnect":
            self.drop_connection(request)
            return resp
        if fault.kind == "stall":
            await asyncio.sleep(fault.delay)
            for frame in events[cut:]:
                await resp.write(frame)
        elif fault.kind == "stream_error":
            kind = fault.error_type or "overloaded_error"
            payload = orjson.dumps(error_body(kind, fault.message if fault.message else "Overloaded"))
            await resp.write(b"event: error\ndata: " + payload + b"\n\n")
        await resp.write_eof()
        return resp

    # -- rendering --------------------------------------------------------------------------------
    @staticmethod
    def _last_user_text(body: dict[str, Any]) -> str:
        for msg in reversed(body.get("messages") or []):
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                return content
            return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")
        return ""

    def _blocks(self, reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.thinking is not None:
            signature = reply.thinking_signature or "EqQBCkYIAxgCIkB" + secrets.token_hex(16)
            blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": signature})
        text = self._last_user_text(body) if reply.echo else reply.text
        if text:
            blocks.append({"type": "text", "text": text})
        for call in reply.tool_calls:
            call_id = call.id or f"toolu_01{next(_ids):06d}{secrets.token_hex(8)}"
            blocks.append({"type": "tool_use", "id": call_id, "name": call.name, "input": call.arguments})
        return blocks

    def _usage(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        # Reply counts are totals; Anthropic reports cache reads apart from input_tokens. Breakpoints
        # add their simulated cache reads/writes on top of the reply's uncached input.
        read, written, hour = self._cache_tokens(body)
        return {
            "input_tokens": reply.input_tokens - reply.cached_input_tokens,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": reply.cached_input_tokens + read,
            "cache_creation": {"ephemeral_5m_input_tokens": 0 if hour else written,
                               "ephemeral_1h_input_tokens": written if hour else 0},
            "output_tokens": reply.output_tokens,
            "service_tier": "standard",
        }

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"msg_01{secrets.token_hex(11)}",
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model", "claude-sonnet-4-5"),
            "content": self._blocks(reply, body),
            "stop_reason": _STOP_REASONS[reply.finish_reason],
            "stop_sequence": None,
            "usage": self._usage(reply, body),
        }

    def events(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        """The full SSE sequence, one frame per list item (faults cut it at a frame boundary)."""
        whole = self.message(reply, body)
        start_usage = dict(whole["usage"], output_tokens=1)
        start = dict(whole, content=[], stop_reason=None, stop_sequence=None, usage=start_usage)
        frames = [_sse("message_start", {"type": "message_start", "message": start}), _sse("ping", {"type": "ping"})]
        for index, block in enumerate(whole["content"]):
            frames.extend(self._block_events(index, block, reply.chunks))
        frames.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens},
                },
            )
        )
        frames.append(_sse("message_stop", {"type": "message_stop"}))
        return frames

    def _block_events(self, index: int, block: dict[str, Any], chunks: int) -> list[bytes]:
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in self.split_text(block["text"], chunks)]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in self.split_text(block["thinking"], chunks)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = orjson.dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": p} for p in self.split_text(raw, chunks)]
        frames = [_sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})]
        frames += [
            _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
        ]
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        return frames

    async def _stream(self, request: web.Request, frames: list[bytes]) -> web.StreamResponse:
        resp = await self.sse_response(request)
        for frame in frames:
            await resp.write(frame)
        await resp.write_eof()
        return resp


def _cut(frames: list[bytes], chunks: int) -> int:
    """How many frames make up the first ``chunks`` content deltas (faults strike after them).

    Zero means nothing after the headers; more chunks than the answer has still stops short of
    ``message_delta``, so the fault always lands before the stream could complete.
    """
    if chunks <= 0:
        return 0
    seen = 0
    for i, frame in enumerate(frames):
        if frame.startswith(b"event: content_block_delta"):
            seen += 1
            if seen == chunks:
                return i + 1
    return len(frames) - 2


def _cacheable_blocks(body: dict[str, Any]) -> list[tuple[bytes, dict[str, Any] | None]]:
    """The prompt in cache order (tools, system, messages) as (JSON without breakpoints, breakpoint)."""
    system = body.get("system")
    items: list[Any] = list(body.get("tools") or [])
    items += system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else [])
    for msg in body.get("messages") or []:
        content = msg.get("content")
        # A string is the same prompt as one text block (the API treats it so).
        items += content if isinstance(content, list) else [{"type": "text", "text": content}]
    return [(orjson.dumps(_unmarked(item)), item.get("cache_control") if isinstance(item, dict) else None)
            for item in items]


def _unmarked(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _unmarked(v) for k, v in item.items() if k != "cache_control"}
    if isinstance(item, list):
        return [_unmarked(v) for v in item]
    return item


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
