"""Anthropic-compatible surface: ``/v1/messages``, streaming ``message_start`` … ``message_stop``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...codecs.sse import frame
from ...errors import EPError
from .. import wire
from ..errors import ANTHROPIC, codec_for, error_payload
from ..responses import error_responses, json_body, json_response, sse_and_json
from . import _chat

router = APIRouter(tags=["Anthropic"])

# canonical field -> this surface's spelling, for naming dropped params
NAMES = {"stop": "stop_sequences", "user": "metadata.user_id"}
PARAMS = {"reasoning": "thinking", "max_tokens": "max_tokens", "parallel_tool_calls": "tool_choice"}

_BLOCKS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "properties": {
        "model": {"type": "string", "description": "provider/model, a deployment name or persona:NAME"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": _BLOCKS},
            },
        },
        "system": _BLOCKS,
        "stream": {"type": "boolean"},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"type": "object"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "thinking": {"type": "object"},
        "metadata": {"type": "object"},
    },
}
MESSAGE = {
    "type": "object",
    "required": ["id", "type", "role", "content", "model"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "content": {"type": "array", "items": {"type": "object"}},
        "model": {"type": "string"},
        "stop_reason": {"type": ["string", "null"]},
        "usage": {"type": "object"},
    },
}


def _error_frame(err: EPError) -> bytes:
    _, body = error_payload(err, ANTHROPIC)
    return frame(body, event="error")


@router.post(
    "/v1/messages",
    openapi_extra=json_body(MESSAGES_REQUEST),
    responses={**sse_and_json(MESSAGE), **error_responses(anthropic=True)},
    summary="Messages (Anthropic wire format), streaming or not",
)
async def messages(request: Request) -> Response:
    codec = codec_for(ANTHROPIC)
    gw, chat, payer, streaming, _ = await _chat.read_chat(request, codec_for(ANTHROPIC).decode_request, PARAMS,
                                                         NAMES)
    fast = wire.ask(gw, chat, codec.FORMAT)
    if not streaming:
        return await _chat.answer(gw, chat, payer, codec.encode_response, fast)
    encoder = codec.StreamEncoder(chat.model)
    encode, trailer, on_error = wire.serve_frames(fast, encoder.encode, encoder.finish, _error_frame)
    return await _chat.stream(gw, chat, payer, encode=encode, trailer=trailer, on_error=on_error)


COUNT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {k: MESSAGES_REQUEST["properties"][k] for k in ("model", "messages", "system", "tools", "tool_choice",
                                                                   "thinking")},
}
TOKEN_COUNT = {"type": "object", "required": ["input_tokens"], "properties": {"input_tokens": {"type": "integer"}}}


@router.post(
    "/v1/messages/count_tokens",
    openapi_extra=json_body(COUNT_REQUEST),
    responses={200: {"description": "Input tokens of the request",
                     "content": {"application/json": {"schema": TOKEN_COUNT}}},
               **error_responses(anthropic=True)},
    summary="Count input tokens (Anthropic wire format): the upstream's own count where it has one",
)
async def count_tokens(request: Request) -> Response:
    gw, chat, _, _, _ = await _chat.read_chat(request, codec_for(ANTHROPIC).decode_request, PARAMS)
    return json_response({"input_tokens": await gw.client.count_tokens(chat)})
