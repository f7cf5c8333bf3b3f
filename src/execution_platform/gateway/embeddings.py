"""Embeddings for ``/v1/embeddings``: OpenAI and Gemini, through the providers' own settings.

The canonical model has no embeddings yet, so this is deliberately minimal: a request (model + texts
+ optional dimensions) and a result (vectors + input tokens), with one upstream call per request over
the shared connection pool. Upstream errors go through the provider codec's ``decode_error``. With a
metered client, the call is metered by ``money.embeddings`` (budgets, rate limits, a ledger row).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import EPError, InvalidRequestError, UpstreamServerError
from ..money.embeddings import metered_embedding
from ..money.metering import CallContext
from ..providers.http import client_timeout, transport_error
from ..providers.registry import split_model
from .state import Gateway

SUPPORTED = ("openai", "gemini", "local")
# No embedding model has more dimensions; a larger value only makes the upstream allocate (or refuse).
MAX_DIMENSIONS = 65_536


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    dimensions: int | None = None
    base64: bool = False  # the official OpenAI SDK asks for base64 float32 by default

    @classmethod
    def from_openai(cls, body: dict[str, Any]) -> EmbeddingRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequestError("'model' is required", param="model")
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            raise InvalidRequestError("'input' must be a string or a non-empty list of strings", param="input")
        dimensions = body.get("dimensions")
        if dimensions is not None and (
            not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= MAX_DIMENSIONS
        ):
            raise InvalidRequestError(f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}", param="dimensions")
        fmt = body.get("encoding_format")
        if fmt not in (None, "float", "base64"):
            raise InvalidRequestError("encoding_format must be 'float' or 'base64'", param="encoding_format")
        return cls(model=model, inputs=inputs, dimensions=dimensions, base64=fmt == "base64")


@dataclass(slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    input_tokens: int
    provider: str
    model: str


def to_base64(vector: list[float]) -> str:
    """Little-endian float32, as OpenAI's ``encoding_format=base64`` answers."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def embed(gw: Gateway, request: EmbeddingRequest, payer: CallContext | None = None) -> EmbeddingResult:
    """One upstream call; metered under ``payer`` when the client has a meter (``payer.cost_usd`` is set)."""
    meter = gw.client.meter
    if meter is None:
        return await _embed(gw, request)
    provider_name, model = split_model(request.model)
    return await metered_embedding(
        meter,
        payer or CallContext(),
        provider=provider_name,
        model=model,
        texts=request.inputs,
        call=lambda: _embed(gw, request),
        tokens_of=lambda result: result.input_tokens,
        config=gw.client._config(),
    )


async def _embed(gw: Gateway, request: EmbeddingRequest) -> EmbeddingResult:
    provider_name, model = split_model(request.model)
    if provider_name not in SUPPORTED:
        raise InvalidRequestError(
            f"provider '{provider_name}' has no embeddings; use one of: {', '.join(SUPPORTED)}", param="model"
        )
    if provider_name == "local":
        from ..providers.local_embeddings import MODEL_NAME, embedder

        vectors, tokens = await embedder().embed(request.inputs, request.dimensions)
        return EmbeddingResult(vectors=vectors, input_tokens=tokens, provider="local", model=MODEL_NAME)
    # The HTTP adapters' internals (key check, base URL, pool), not the Provider protocol's: this wire
    # code belongs in the providers (embeddings as a provider capability).
    provider: Any = gw.client.provider(provider_name)
    provider._require_key()
    if provider_name == "openai":
        url = f"{provider.base_url}/embeddings"
        payload: dict[str, Any] = {"model": model, "input": request.inputs, "encoding_format": "float"}
        if request.dimensions:
            payload["dimensions"] = request.dimensions
    else:
        url = f"{provider.base_url}/v1beta/models/{model}:batchEmbedContents"
        item: dict[str, Any] = {"model": f"models/{model}"}
        if request.dimensions:
            item["outputDimensionality"] = request.dimensions
        payload = {"requests": [{**item, "content": {"parts": [{"text": t}]}} for t in request.inputs]}
    data = await _post(provider, url, payload)
    try:
        if provider_name == "openai":
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [row["embedding"] for row in rows]
            tokens = int((data.get("usage") or {}).get("prompt_tokens", 0))
            served = data.get("model") or model
        else:
            vectors = [row["values"] for row in data["embeddings"]]
            tokens = 0  # Gemini's batchEmbedContents does not report token counts
            served = model
    except (KeyError, TypeError, AttributeError) as exc:
        raise UpstreamServerError(f"{provider_name}: unexpected embeddings answer", provider=provider_name) from exc
    return EmbeddingResult(vectors=vectors, input_tokens=tokens, provider=provider_name, model=served)


async def _post(provider: Any, url: str, payload: dict[str, Any]) -> Any:
    headers = {"content-type": "application/json", **provider.headers()}
    session = provider._http.session()
    try:
        async with session.post(
            url, data=orjson.dumps(payload), headers=headers, timeout=client_timeout(provider.timeouts)
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise provider._error(resp.status, raw, resp.headers)
    except EPError:
        raise
    except Exception as exc:
        raise transport_error(exc, provider.name, "waiting for embeddings") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamServerError(f"{provider.name}: malformed embeddings answer", provider=provider.name) from exc
