"""OpenAI Responses API surface: ``POST /v1/responses`` and ``GET``/``DELETE /v1/responses/{id}``.

Served by any provider like the chat surfaces: the Responses codec decodes to the canonical request,
routing and metering run unchanged, and the answer is encoded back. The server-state fields are the
gateway's own: with ``store`` (default true, as in OpenAI's API) the response and its canonical
conversation are saved in the ledger's database, so ``previous_response_id`` can continue it and
``GET`` can return it, but only to the key that created it (any other key gets 404, as for an unknown
id). Instructions are not carried over from a previous response, as in OpenAI's API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...codecs import openai_responses as codec
from ...codecs.passthrough import drop, open_report
from ...errors import InvalidRequestError, NotFoundError
from ...model import ChatRequest, ChatResponse, Message
from ...money.metering import CallContext
from ...storage.responses import MemoryResponseStore, ResponseStore, SQLResponseStore, StoredResponse
from ..calls import complete, decode_with, model_headers, prepare, principal_of
from ..limits import check_message_count, read_json_object
from ..response_saver import ResponseSaver
from ..responses import error_responses, json_body, json_response, sse_and_json
from ..state import Gateway
from . import _chat

router = APIRouter(tags=["OpenAI"])

# Canonical field → the Responses spelling, for "unsupported parameter" messages.
PARAMS = {"reasoning": "reasoning", "max_tokens": "max_output_tokens", "response_format": "text.format"}

RESPONSES_REQUEST = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "description": "provider/model, a deployment name or persona:NAME"},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "instructions": {"type": "string"},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean", "description": "keep the response for GET and previous_response_id (default true)"},
        "previous_response_id": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "parallel_tool_calls": {"type": "boolean"},
        "text": {"type": "object", "properties": {"format": {"type": "object"}}},
        "reasoning": {"type": "object", "properties": {"effort": {"type": "string"}}},
        "max_output_tokens": {"type": "integer"},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "user": {"type": "string"},
    },
}
RESPONSE = {
    "type": "object",
    "required": ["id", "object", "created_at", "model", "output", "status"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "created_at": {"type": "number"},
        "model": {"type": "string"},
        "status": {"type": "string"},
        "output": {"type": "array", "items": {"type": "object"}},
        "usage": {"type": ["object", "null"]},
    },
}
DELETED = {
    "type": "object",
    "required": ["id", "object", "deleted"],
    "properties": {"id": {"type": "string"}, "object": {"const": "response"}, "deleted": {"type": "boolean"}},
}


def response_saver(request: Request) -> ResponseSaver:
    """Saves to the ledger database's ``responses`` table, or to process memory without a ledger."""
    state = request.app.state
    saver: ResponseSaver | None = getattr(state, "response_saver", None)
    if saver is None:
        meter = _chat.gateway(request).client.meter
        engine = meter.engine if meter is not None else None
        store: ResponseStore = SQLResponseStore(engine) if engine is not None else MemoryResponseStore()
        saver = state.response_saver = ResponseSaver(store)
    return saver


async def _lookup(request: Request, response_id: str) -> StoredResponse | None:
    saver = response_saver(request)
    await saver.settle(response_id)
    return await asyncio.to_thread(saver.store.get, response_id, principal_of(request).key_id)


def _not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param=param, code="response_not_found")


class _State:
    """The server-state fields of one request, popped off the body before decoding."""

    def __init__(self, body: dict[str, Any]) -> None:
        store = body.pop("store", True)
        if store is None:
            store = True
        if not isinstance(store, bool):
            raise InvalidRequestError("'store' must be a boolean", param="store")
        previous = body.pop("previous_response_id", None)
        if previous is not None and not isinstance(previous, str):
            raise InvalidRequestError("'previous_response_id' must be a string", param="previous_response_id")
        metadata = body.pop("metadata", None)
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
        ):
            raise InvalidRequestError("'metadata' must be an object of strings", param="metadata")
        self.store, self.previous, self.metadata = store, previous, metadata or {}
        self.instructions = isinstance(body.get("instructions"), str) and bool(body["instructions"])

    @property
    def echo(self) -> dict[str, Any]:
        return {"previous_response_id": self.previous, "metadata": self.metadata}

    def conversation(self, chat: ChatRequest, answer: Message) -> list[dict[str, Any]]:
        """What a later ``previous_response_id`` continues: history, this input, this answer (no instructions)."""
        messages = chat.messages[1:] if self.instructions else chat.messages
        return [m.model_dump(mode="json", exclude_none=True) for m in [*messages, answer]]


async def _read(request: Request) -> tuple[Gateway, ChatRequest, CallContext, bool, _State, ResponseSaver]:
    gw = _chat.gateway(request)
    open_report(strict=_chat.strict_params(gw), names=PARAMS)
    body = await read_json_object(request, gw.limits)
    stream = body.pop("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    body.pop("stream_options", None)
    state = _State(body)
    for name in codec.dropped_tools(body):
        drop(name, "is a tool hosted by OpenAI; no provider behind this gateway can run it")
    check_message_count(body, gw.limits, key="input")
    chat = decode_with(codec.decode_request, body)
    saver = response_saver(request)
    if state.previous is not None:
        previous = await _lookup(request, state.previous)
        if previous is None:
            raise InvalidRequestError(f"Previous response with id '{state.previous}' not found.",
                                      param="previous_response_id", code="previous_response_not_found")
        history = [Message.model_validate(m) for m in previous.conversation]
        head = chat.messages[:1] if state.instructions else []
        chat.messages = [*head, *history, *chat.messages[len(head):]]
    chat, payer = prepare(gw, chat, request, PARAMS)
    return gw, chat, payer, stream, state, saver


def _stored(state: _State, chat: ChatRequest, payload: dict[str, Any], answer: Message) -> StoredResponse:
    return StoredResponse(id=payload["id"], key_id=chat.metadata.key_id, model=str(payload.get("model") or chat.model),
                          conversation=state.conversation(chat, answer), response=payload)


@router.post(
    "/v1/responses",
    openapi_extra=json_body(RESPONSES_REQUEST),
    responses={**sse_and_json(RESPONSE), **error_responses()},
    summary="Create a response (OpenAI Responses API), streaming or not, served by any provider",
)
async def create_response(request: Request) -> Response:
    gw, chat, payer, streaming, state, saver = await _read(request)
    if not streaming:
        response: ChatResponse = await complete(gw, chat, payer)
        payload = codec.encode_response(response, chat)
        payload.update(state.echo)
        if state.store:
            await saver.save(_stored(state, chat, payload, response.message))
        return json_response(payload, headers={**model_headers(response), **_chat.dropped_headers()})
    encoder = codec.StreamEncoder(chat.model, request=chat, extra=state.echo)

    def trailer() -> bytes:
        # The save starts before response.completed leaves; reads of this id wait for it.
        data = encoder.finish()
        if state.store and encoder.final is not None:
            saver.save_soon(_stored(state, chat, encoder.final, codec.decode_response(encoder.final).message))
        return data

    return await _chat.stream(gw, chat, payer, encode=encoder.encode, trailer=trailer, on_error=encoder.error)


INPUT_TOKENS = {
    "type": "object",
    "required": ["object", "input_tokens"],
    "properties": {"object": {"const": "response.input_tokens"}, "input_tokens": {"type": "integer"}},
}


@router.post(
    "/v1/responses/input_tokens",
    openapi_extra=json_body(RESPONSES_REQUEST),
    responses={200: {"description": "Input tokens of the request",
                     "content": {"application/json": {"schema": INPUT_TOKENS}}},
               **error_responses()},
    summary="Count input tokens (OpenAI Responses shape): the upstream's own count where it has one",
)
async def count_input_tokens(request: Request) -> Response:
    """The same request ``POST /v1/responses`` would send (``previous_response_id`` included), counted
    by the serving provider's own endpoint where it has one, offline otherwise; nothing is stored."""
    gw, chat, _, _, _, _ = await _read(request)
    return json_response({"object": "response.input_tokens", "input_tokens": await gw.client.count_tokens(chat)})


@router.get(
    "/v1/responses/{response_id}",
    responses={200: {"description": "A stored response", "content": {"application/json": {"schema": RESPONSE}}},
               **error_responses(statuses=(401, 404))},
    summary="Retrieve a stored response (only the key that created it)",
)
async def get_response(request: Request, response_id: str) -> Response:
    found = await _lookup(request, response_id)
    if found is None:
        raise _not_found(response_id)
    return json_response(found.response)


@router.delete(
    "/v1/responses/{response_id}",
    responses={200: {"description": "Deleted", "content": {"application/json": {"schema": DELETED}}},
               **error_responses(statuses=(401, 404))},
    summary="Delete a stored response (only the key that created it)",
)
async def delete_response(request: Request, response_id: str) -> Response:
    saver = response_saver(request)
    await saver.settle(response_id)
    deleted = await asyncio.to_thread(saver.store.delete, response_id, principal_of(request).key_id)
    if not deleted:
        raise _not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})
