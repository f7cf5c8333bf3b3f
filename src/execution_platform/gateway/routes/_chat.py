"""The chat flow shared by the three surfaces, parameterised by the surface's codec pieces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...codecs.passthrough import DROPPED_HEADER, current_report, open_report
from ...errors import EPError, InvalidRequestError
from ...model import ChatRequest, ChatResponse, StreamEvent
from ...money.metering import CallContext
from ..calls import decode_with, model_head, open_stream, prepare, stream_headers
from ..limits import check_message_count, read_json_object
from ..responses import JSONBytes
from ..state import Gateway
from ..streaming import SSEResponse


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def strict_params(gw: Gateway) -> bool:
    server = gw.config.get("server") if isinstance(gw.config, dict) else getattr(gw.config, "server", None)
    value = server.get("strict_params") if isinstance(server, dict) else getattr(server, "strict_params", False)
    return bool(value)


def dropped_headers() -> dict[str, str]:
    """``x-ep-dropped-params`` naming what this call's upstream did not receive (empty: no header)."""
    report = current_report()
    return {DROPPED_HEADER: report.header()} if report is not None and report.dropped else {}


async def read_chat(
    request: Request,
    decode: Callable[[dict[str, Any]], ChatRequest],
    params: dict[str, str] | None = None,
    names: dict[str, str] | None = None,
) -> tuple[Gateway, ChatRequest, CallContext, bool, dict[str, Any]]:
    """Body → checked canonical request and its payer; returns the stream flag and the stripped
    transport options.

    Opens the call's dropped-parameter report first: decoding and the upstream encoder both add to it.
    ``names`` spells canonical fields the way this surface's clients do.
    """
    gw = gateway(request)
    open_report(strict=strict_params(gw), names=names)
    body = await read_json_object(request, gw.limits)
    stream = body.pop("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    if not body.get("model") and not request.headers.get("x-ep-persona"):
        from ._catalog import default_model

        body["model"] = default_model(gw) or body.get("model")
    transport = {"stream_options": body.pop("stream_options", None)}
    check_message_count(body, gw.limits)
    chat, payer = prepare(gw, decode_with(decode, body), request, params)
    return gw, chat, payer, stream, transport


async def answer(
    gw: Gateway,
    chat: ChatRequest,
    payer: CallContext,
    encode_response: Callable[[ChatResponse], dict[str, Any]],
    wire_format: str | None = None,
) -> Response:
    """The answer re-encoded from canonical, or the upstream's own body when it is ``wire_format``."""
    response = await gw.client.send(chat, payer=payer)  # ``calls.complete``, one coroutine frame less
    head = model_head(response, dropped_headers())
    body = response.wire_body
    if wire_format is not None and body is not None and body[0] == wire_format:
        return JSONBytes(body[1], head=head)
    return JSONBytes(orjson.dumps(encode_response(response)), head=head)


async def stream(
    gw: Gateway,
    chat: ChatRequest,
    payer: CallContext,
    *,
    encode: Callable[[StreamEvent], bytes],
    trailer: Callable[[], bytes],
    on_error: Callable[[EPError], bytes],
) -> SSEResponse:
    head = await open_stream(gw, chat, payer)
    return SSEResponse(
        head,
        encode=encode,
        trailer=trailer,
        on_error=on_error,
        headers=[*stream_headers(head, chat), *((k.encode(), v.encode()) for k, v in dropped_headers().items())],
        keepalive=gw.keepalive,
    )
