"""The embeddings flow shared by the OpenAI and Gemini surfaces, parameterised by the surface's codec.

A route decodes its body with its codec; this checks the key's scope, names the payer, calls
``Client.embed`` (routing, retries, metering: the same stack as chat) and answers with the surface's
encoding and the usual ``x-ep-*`` headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...model import EmbeddingRequest, EmbeddingResponse, RequestMetadata
from ..calls import model_headers, principal_of
from ..money import payer as money_payer
from ..responses import json_response
from ..state import Gateway


async def answer(
    gw: Gateway,
    request: Request,
    embedding: EmbeddingRequest,
    encode_response: Callable[[EmbeddingResponse], dict[str, Any]],
) -> Response:
    principal = principal_of(request)
    principal.require_model(embedding.model)
    payer = money_payer(request, principal)
    embedding.metadata = RequestMetadata(
        key_id=payer.key_id, team=payer.team, run_id=payer.run_id, session_id=payer.session_id
    )
    result = await gw.client.embed(embedding, payer=payer)
    return json_response(encode_response(result), headers=model_headers(result))

