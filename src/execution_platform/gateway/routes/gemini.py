"""Gemini-compatible surface (Google's Generative Language API), under ``/v1beta/`` and ``/v1/``.

``POST /{v}/models/{model}:generateContent`` | ``:streamGenerateContent`` | ``:countTokens`` |
``:embedContent`` | ``:batchEmbedContents`` and ``GET /v1beta/models[/{model}]``, served by any provider
through the Gemini codec. ``{model}`` is any of our addresses: the google-genai SDK sends
``models/openai/gpt-4o-mini:generateContent`` verbatim (the slash unescaped, a ``%2F`` arrives decoded),
so the route takes the rest of the path and splits the method off at the *last* colon
(``persona:coder:generateContent`` works too). Both API versions are served because the SDK picks one
by its options; ``GET /v1/models`` is OpenAI's list, except for a caller sending ``x-goog-api-key``.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from ...codecs import gemini as codec
from ...codecs import gemini_embeddings
from ...codecs.passthrough import open_report
from ...codecs.sse import frame
from ...errors import EPError, InvalidRequestError, NotFoundError
from ...model import ChatRequest
from ...model.address import parse_address
from ...money.metering import CallContext
from ..calls import capabilities, decode_with, prepare, principal_of
from ..errors import GEMINI, error_payload, error_response
from ..limits import check_message_count, read_json_object
from ..responses import error_responses, json_body, json_response
from ..state import Gateway
from . import _chat, _embed
from ._catalog import model_ids, visible_models

router = APIRouter(tags=["Gemini"])


class _AnyPath(PathConvertor):
    """Like ``path`` but also across control characters (``.`` stops at a newline), so every
    ``POST /v1/models/...`` reaches the handler below and fails in Google's shape, not OpenAI's."""

    regex = "[\\s\\S]*"


register_url_convertor("gemini_target", _AnyPath())

VERSIONS = ("v1beta", "v1")
# Canonical field → the name a Gemini client used, for "unsupported parameter" messages.
PARAMS = {
    "reasoning": "generationConfig.thinkingConfig",
    "max_tokens": "generationConfig.maxOutputTokens",
    "response_format": "generationConfig.responseJsonSchema",
    "messages": "contents",
}
CHAT_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
EMBED_METHODS = gemini_embeddings.METHODS

GOOGLE_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "status": {"type": "string"}},
        }
    },
}
GENERATE_REQUEST = {
    "type": "object",
    "description": "A generateContent, countTokens, embedContent or batchEmbedContents body, by method",
    "properties": {
        "contents": {"type": "array", "items": {"type": "object"}},
        "systemInstruction": {"type": "object"},
        "tools": {"type": "array", "items": {"type": "object"}},
        "toolConfig": {"type": "object"},
        "generationConfig": {"type": "object"},
        "generateContentRequest": {"type": "object"},
        "content": {"type": "object"},
        "requests": {"type": "array", "items": {"type": "object"}},
        "outputDimensionality": {"type": "integer"},
    },
}
# Every status the other surfaces document, with Google's body.
_ERRORS = {
    code: {**spec, "content": {"application/json": {"schema": GOOGLE_ERROR}}}
    for code, spec in error_responses().items()
}


def _error_frame(err: EPError) -> bytes:
    _, body = error_payload(err, GEMINI)
    return frame(body)


def _split(target: str) -> tuple[str, str]:
    """``models/openai/gpt-4o-mini:generateContent`` → (``openai/gpt-4o-mini``, ``generateContent``)."""
    model, sep, method = target.rpartition(":")
    model = model.removeprefix("models/")
    if not sep or not model:
        raise NotFoundError(f"no model method in '{target}': expected models/MODEL:METHOD", code="route_not_found")
    return model, method


def _decode(gw: Gateway, request: Request, body: dict[str, Any], model: str) -> tuple[ChatRequest, CallContext]:
    check_message_count(body, gw.limits, key="contents")
    chat = decode_with(functools.partial(codec.decode_request, model=model), body)
    return prepare(gw, chat, request, PARAMS)


async def model_call(request: Request) -> Response:
    """One endpoint for every ``models/{model}:method`` call, dispatched on the method.

    Errors are rendered here, in Google's shape, because ``POST /v1/models/x`` without a ``:method``
    is not recognisable as a Gemini path by its path alone (``/v1/models/...`` is OpenAI's too)."""
    try:
        return await _model_call(request)
    except EPError as err:
        return error_response(err, GEMINI)


async def _model_call(request: Request) -> Response:
    model, method = _split(request.path_params["target"])
    if method not in CHAT_METHODS and method not in EMBED_METHODS:
        raise NotFoundError(f"method '{method}' is not served; use one of: "
                            + ", ".join(CHAT_METHODS + EMBED_METHODS), code="route_not_found")
    gw = _chat.gateway(request)
    open_report(strict=_chat.strict_params(gw), names=codec.PARAM_NAMES)
    body = await read_json_object(request, gw.limits)
    if method in EMBED_METHODS:
        batch = method == "batchEmbedContents"
        embedding = gemini_embeddings.decode_request(body, model=model, batch=batch)
        return await _embed.answer(
            gw, request, embedding, lambda result: gemini_embeddings.encode_response(result, batch=batch)
        )
    if method == "countTokens":
        inner = body.get("generateContentRequest")
        if inner is not None and not isinstance(inner, dict):
            raise InvalidRequestError("'generateContentRequest' must be an object", param="generateContentRequest")
        chat, _ = _decode(gw, request, inner if inner is not None else body, model)
        return json_response({"totalTokens": await gw.client.count_tokens(chat)})
    chat, payer = _decode(gw, request, body, model)
    if method == "generateContent":
        return await _chat.answer(gw, chat, payer, codec.encode_response)
    if request.query_params.get("alt") != "sse":
        # Without alt=sse Google streams one JSON array of response objects; one whole answer is such an array.
        return await _chat.answer(gw, chat, payer, lambda response: [codec.encode_response(response)])  # type: ignore[arg-type,return-value]
    encoder = codec.StreamEncoder(chat.model)
    return await _chat.stream(gw, chat, payer, encode=encoder.encode, trailer=encoder.finish, on_error=_error_frame)


def _model_info(gw: Gateway, model: str) -> dict[str, Any]:
    """Google's ``Model`` resource for one of our addresses (limits from its capabilities when known)."""
    info: dict[str, Any] = {
        "name": f"models/{model}",
        "baseModelId": model,
        "version": "1",
        "displayName": model,
        "supportedGenerationMethods": [*CHAT_METHODS, *EMBED_METHODS],
    }
    caps = None if parse_address(model).is_persona else capabilities(gw, model)
    if caps is not None:
        if caps.context_window:
            info["inputTokenLimit"] = caps.context_window
        if caps.max_output_tokens:
            info["outputTokenLimit"] = caps.max_output_tokens
    return info


def wants_gemini_list(request: Request) -> bool:
    """``GET /v1/models`` is OpenAI's list; a Google client (``x-goog-api-key``) gets Google's shape."""
    return "x-goog-api-key" in request.headers


async def list_models(request: Request) -> Response:
    gw = _chat.gateway(request)
    principal = principal_of(request)
    return json_response({"models": [_model_info(gw, e.id) for e in visible_models(gw, principal)]})


async def get_model(request: Request) -> Response:
    gw = _chat.gateway(request)
    model = request.path_params["model"].removeprefix("models/")
    principal_of(request).require_model(model)
    known = {name for name, _ in model_ids(gw)}
    if parse_address(model).is_persona and model not in known:
        raise NotFoundError(f"models/{model} is not found", code="model_not_found", param="model")
    return json_response(_model_info(gw, model))


_MODEL_LIST = {"type": "object", "properties": {"models": {"type": "array", "items": {"type": "object"}}}}
def _path_param(name: str, description: str) -> dict[str, Any]:
    """The endpoints read the raw path (a model may contain '/'), so FastAPI cannot infer the parameter."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


for _version in VERSIONS:
    router.add_api_route(
        f"/{_version}/models/{{target:gemini_target}}",
        model_call,
        methods=["POST"],
        openapi_extra={**json_body(GENERATE_REQUEST), "parameters": [_path_param(
            "target", "MODEL:METHOD, e.g. openai/gpt-4o-mini:generateContent (the model may contain '/')")]},
        responses={200: {"description": "GenerateContentResponse (SSE with alt=sse, a JSON array of them for "
                         "streamGenerateContent without it), token count or embeddings",
                         "content": {"application/json": {"schema": {"anyOf": [
                             {"type": "object"}, {"type": "array", "items": {"type": "object"}}]}},
                                     "text/event-stream": {"schema": {"type": "string"}}}},
                   **_ERRORS},
        summary=f"Gemini models/MODEL:METHOD ({_version}): generateContent, streamGenerateContent, countTokens, "
        "embedContent, batchEmbedContents",
        name=f"gemini_model_call_{_version}",
    )
router.add_api_route(
    "/v1beta/models", list_models, methods=["GET"], summary="List models (Gemini wire format)",
    responses={200: {"description": "Models this key may use",
                     "content": {"application/json": {"schema": _MODEL_LIST}}}, **_ERRORS},
)
router.add_api_route(
    "/v1beta/models/{model:gemini_target}", get_model, methods=["GET"], summary="Get a model (Gemini wire format)",
    openapi_extra={"parameters": [_path_param("model", "one of our model addresses, e.g. openai/gpt-4o-mini")]},
    responses={200: {"description": "The model", "content": {"application/json": {"schema": {"type": "object"}}}},
               **_ERRORS},
)
