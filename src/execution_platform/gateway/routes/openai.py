"""OpenAI-compatible surface: ``/v1/chat/completions``, ``/v1/embeddings`` (models: ``routes/models.py``)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...codecs import openai_embeddings
from ...codecs.sse import frame
from ...errors import EPError, InvalidRequestError
from ...model import StreamEvent, UsageEvent
from .. import wire
from ..errors import OPENAI, codec_for, error_payload
from ..limits import read_json_object
from ..responses import error_responses, json_body, sse_and_json
from . import _chat, _embed

router = APIRouter(tags=["OpenAI"])

# Canonical field → the name an OpenAI client used, for "unsupported parameter" messages.
PARAMS = {"reasoning": "reasoning_effort", "max_tokens": "max_tokens"}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}]},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}
CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "provider/model, a deployment name or persona:NAME"},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "parallel_tool_calls": {"type": "boolean"},
        "response_format": {"type": "object"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "seed": {"type": "integer"},
        "user": {"type": "string"},
        "reasoning_effort": {"type": "string"},
    },
}
CHAT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": {"type": "object"},
    },
}
EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string"},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
        "dimensions": {"type": "integer", "minimum": 1},
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "user": {"type": "string"},
    },
}
EMBEDDINGS_RESPONSE = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": {"type": "object"}},
        "model": {"type": "string"},
        "usage": {"type": "object"},
    },
}


def _error_frame(err: EPError) -> bytes:
    _, body = error_payload(err, OPENAI)
    return frame(body)


@router.post(
    "/v1/chat/completions",
    openapi_extra=json_body(CHAT_REQUEST),
    responses={**sse_and_json(CHAT_COMPLETION), **error_responses()},
    summary="Chat completion (OpenAI wire format), streaming or not",
)
async def chat_completions(request: Request) -> Response:
    codec = codec_for(OPENAI)
    gw, chat, payer, streaming, transport = await _chat.read_chat(request, codec.decode_request, PARAMS)
    if not streaming:
        return await _chat.answer(gw, chat, payer, codec.encode_response, wire.ask(gw, chat, codec.FORMAT))
    options = transport["stream_options"]
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError("'stream_options' must be an object", param="stream_options")
    include_usage = bool(options and options.get("include_usage"))
    fast = wire.ask(gw, chat, codec.FORMAT, include_usage=include_usage)
    encoder = codec.StreamEncoder(chat.model)
    if include_usage:
        encode = encoder.encode
    else:

        def encode(event: StreamEvent) -> bytes:
            return b"" if isinstance(event, UsageEvent) else encoder.encode(event)

    encode, trailer, on_error = wire.serve_frames(fast, encode, encoder.finish, _error_frame)
    return await _chat.stream(gw, chat, payer, encode=encode, trailer=trailer, on_error=on_error)


@router.post(
    "/v1/embeddings",
    openapi_extra=json_body(EMBEDDINGS_REQUEST),
    responses={200: {"description": "Embeddings", "content": {"application/json": {"schema": EMBEDDINGS_RESPONSE}}},
               **error_responses()},
    summary="Embeddings (OpenAI wire format), served by OpenAI, Gemini or the local model",
)
async def embeddings(request: Request) -> Response:
    gw = _chat.gateway(request)
    body = await read_json_object(request, gw.limits)
    embedding = openai_embeddings.decode_request(body)
    base64 = openai_embeddings.wants_base64(body)
    return await _embed.answer(
        gw, request, embedding, lambda result: openai_embeddings.encode_response(result, base64=base64)
    )
