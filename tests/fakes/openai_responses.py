"""OpenAI's Responses API (``POST /v1/responses``) for :class:`tests.fakes.openai.FakeOpenAI`.

Written from OpenAI's API reference, independently of the gateway's codec: a response object with
``output`` items (message/output_text, function_call), usage with cached and reasoning token details,
and the typed stream (``response.created`` … ``response.completed``) with ``sequence_number``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from .base import FakeUpstream
from .script import Fault, Reply, Script, ToolCallSpec


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_input_tokens, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _last_user_text(body: dict[str, Any]) -> str:
    raw = body.get("input")
    if isinstance(raw, str):
        return raw
    for item in reversed(raw or []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


class ResponsesRenderer:
    """Renders one scripted reply as a Responses API object or event stream."""

    def __init__(self, body: dict[str, Any], reply: Reply, calls: list[tuple[str, ToolCallSpec]], serial: int) -> None:
        self.body, self.reply, self.calls = body, reply, calls
        self.id = f"resp_{serial:048x}"
        self.model = reply.model or body["model"]
        self.text = _last_user_text(body) if reply.echo else reply.text
        self.created = int(time.time())

    def _items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if self.text:
            items.append({"id": f"msg_{self.id[5:]}", "type": "message", "status": "completed", "role": "assistant",
                          "content": [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}]})
        for k, (call_id, call) in enumerate(self.calls):
            items.append({"id": f"fc_{k}{self.id[6:]}", "type": "function_call", "status": "completed",
                          "call_id": call_id, "name": call.name, "arguments": orjson.dumps(call.arguments).decode()})
        return items

    def response(self, status: str = "completed", *, done: bool = True) -> dict[str, Any]:
        body = self.body
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": False, "error": None, "incomplete_details": incomplete,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model, "output": self._items() if done else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": None,
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []), "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": _usage(self.reply) if done else None, "user": None, "metadata": body.get("metadata") or {},
        }

    def events(self) -> list[dict[str, Any]]:
        status = "incomplete" if self.reply.finish == "length" else "completed"
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response("in_progress", done=False)},
            {"type": "response.in_progress", "response": self.response("in_progress", done=False)},
        ]
        for index, item in enumerate(self._items()):
            if item["type"] == "message":
                events += self._message_events(index, item)
            else:
                events += self._call_events(index, item)
        events.append({"type": f"response.{status}", "response": self.response(status)})
        return [{**event, "sequence_number": n} for n, event in enumerate(events)]

    def _message_events(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        out = [
            {"type": "response.output_item.added", "output_index": index,
             "item": {**item, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **where, "part": empty},
        ]
        for piece in FakeUpstream.split_text(self.text or "", self.reply.chunks):
            out.append({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []})
        out += [
            {"type": "response.output_text.done", **where, "text": self.text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": item["content"][0]},
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
        return out

    def _call_events(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        where = {"item_id": item["id"], "output_index": index}
        out = [{"type": "response.output_item.added", "output_index": index,
                "item": {**item, "status": "in_progress", "arguments": ""}}]
        for piece in FakeUpstream.split_text(item["arguments"], 3):
            out.append({"type": "response.function_call_arguments.delta", **where, "delta": piece})
        out += [
            {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]},
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
        return out


def invalid_input(body: Any) -> tuple[str, str] | None:
    """The (message, param) of a 400 the real API would give, or None."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", "body"
    if not isinstance(body.get("model"), str):
        return "Missing required parameter: 'model'.", "model"
    raw = body.get("input")
    if raw is not None and not isinstance(raw, str | list):
        return "Invalid type for 'input': expected a string or an array of input items.", "input"
    return None


def _cut(events: list[dict[str, Any]], chunks: int) -> int:
    """How many events carry the first ``chunks`` deltas (text or arguments), so a fault strikes after
    them; asking for more than the answer has still stops before the final ``response.*`` event."""
    if chunks <= 0:
        return 0
    seen = 0
    for i, event in enumerate(events):
        if event["type"] in ("response.output_text.delta", "response.function_call_arguments.delta"):
            seen += 1
            if seen == chunks:
                return i + 1
    return len(events) - 1


async def serve(fake: Any, request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses`` on the fake: scripted replies, faults and streaming."""
    from .openai import status_error

    body = fake.requests[-1].body
    problem = invalid_input(body)
    if problem is not None:
        return fake._bad_request(*problem)
    stream = bool(body.get("stream"))
    script: Script = await fake.apply_pre_fault(fake.next_script())
    if isinstance(script, Fault) and (script.kind == "status" or (script.kind == "stream_error" and not stream)):
        payload, headers = status_error(script)
        return fake.json_response(payload, status=script.status, headers={**fake._headers(), **headers})
    if isinstance(script, Fault) and script.kind == "malformed_json":
        if not stream:
            return web.Response(body=b'{"id": "resp_broken", "output": [', status=200,
                                content_type="application/json", headers=fake._headers())
        resp = await fake._open_stream(request)
        await resp.write(b'event: response.created\ndata: {"type": "response.created", "response": {\n\n')
        await resp.write_eof()
        return resp
    reply = (script.then or Reply()) if isinstance(script, Fault) else script
    renderer = ResponsesRenderer(body, reply, fake._calls(reply), next(fake._ids))
    if not stream:
        payload = renderer.response("incomplete" if reply.finish == "length" else "completed")
        return await fake._plain(request, script, payload)
    events = renderer.events()
    resp = await fake._open_stream(request)
    limit = _cut(events, script.after_chunks) if isinstance(script, Fault) else len(events)
    for event in events[:limit]:
        await resp.write(f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event) + b"\n\n")
    if isinstance(script, Fault):
        if script.kind in ("disconnect", "stall"):
            if script.kind == "stall":
                await fake._idle(request, script.delay)
            else:
                await asyncio.sleep(0.01)  # let the sent events leave before the reset
            fake.drop_connection(request)
            return resp
        if script.kind == "stream_error":
            error = {"type": "error", "code": script.error_type or "server_error", "message": script.message,
                     "param": None, "sequence_number": limit}
            await resp.write(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
    await resp.write_eof()
    return resp
