"""OpenAI's ``/v1/embeddings`` wire ⇄ the canonical embeddings call, both directions.

Serving: :func:`decode_request` checks a caller's body and :func:`encode_response` answers it, as
floats or, when the caller asked for ``encoding_format: base64`` (the official SDK's default), as
little-endian float32 in base64. Calling upstream: :func:`encode_request` always asks for floats (the
platform works with numbers and encodes for its own caller) and :func:`decode_response` reads the
answer. Upstream errors have chat's shape, so the adapter maps them with ``openai_chat.decode_error``.
"""

from __future__ import annotations

import struct
from base64 import b64decode, b64encode
from typing import Any

from ..errors import InvalidRequestError
from ..model import EmbeddingRequest, EmbeddingResponse, Usage

# No embedding model has more dimensions; a larger value only makes the upstream allocate (or refuse).
MAX_DIMENSIONS = 65_536
ENCODINGS = (None, "float", "base64")


def decode_request(body: dict[str, Any], /, *, model: str = "") -> EmbeddingRequest:
    """A caller's body → canonical request (``model`` from the route wins over the body's when given)."""
    named = model or body.get("model")
    if not isinstance(named, str) or not named:
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
    if body.get("encoding_format") not in ENCODINGS:
        raise InvalidRequestError("encoding_format must be 'float' or 'base64'", param="encoding_format")
    return EmbeddingRequest(model=named, inputs=inputs, dimensions=dimensions)


def wants_base64(body: dict[str, Any], /) -> bool:
    """Whether the caller asked for base64 vectors (the body already passed :func:`decode_request`)."""
    return body.get("encoding_format") == "base64"


def encode_response(response: EmbeddingResponse, /, *, base64: bool = False) -> dict[str, Any]:
    """Canonical answer → OpenAI's ``{"object": "list", "data": [...], "model", "usage"}``."""
    data = [
        {"object": "embedding", "index": i, "embedding": _encode_vector(vector) if base64 else vector}
        for i, vector in enumerate(response.vectors)
    ]
    tokens = response.usage.input_tokens
    return {
        "object": "list",
        "data": data,
        "model": response.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def encode_request(request: EmbeddingRequest, /) -> dict[str, Any]:
    """Canonical request → the upstream body (``request.model`` is the provider's own name)."""
    body: dict[str, Any] = {"model": request.model, "input": request.inputs, "encoding_format": "float"}
    if request.dimensions:
        body["dimensions"] = request.dimensions
    return body


def decode_response(body: dict[str, Any], /, *, model: str = "") -> EmbeddingResponse:
    """The upstream's answer → canonical (rows put back in input order, base64 rows read too); a
    malformed answer raises ``KeyError``/``TypeError``/``ValueError``, which the adapter reports as an
    upstream error."""
    rows = sorted(body["data"], key=lambda row: row.get("index", 0))
    tokens = int((body.get("usage") or {}).get("prompt_tokens", 0))
    return EmbeddingResponse(
        vectors=[_decode_vector(row["embedding"]) for row in rows],
        model=body.get("model") or model,
        usage=Usage(input_tokens=tokens),
    )


def _encode_vector(vector: list[float]) -> str:
    """Little-endian float32, as OpenAI's ``encoding_format=base64`` answers."""
    return b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _decode_vector(vector: list[float] | str) -> list[float]:
    """Floats as they are; base64 text (the inverse of :func:`_encode_vector`) unpacked."""
    if not isinstance(vector, str):
        return vector
    raw = b64decode(vector)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
