"""Gemini's ``embedContent`` / ``batchEmbedContents`` wire ⇄ the canonical embeddings call.

Serving: :func:`decode_request` reads either method's body (one ``content``, or ``requests`` of them;
the model comes from the URL path) and :func:`encode_response` answers in the method's shape.
Calling upstream: :func:`encode_request` always uses ``batchEmbedContents`` (one call for any number
of texts) and :func:`decode_response` reads its answer, which carries no token count. Upstream
errors have ``generateContent``'s shape, so the adapter maps them with ``gemini.decode_error``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequestError
from ..model import EmbeddingRequest, EmbeddingResponse

METHODS = ("embedContent", "batchEmbedContents")


def decode_request(body: dict[str, Any], /, *, model: str = "", batch: bool = False) -> EmbeddingRequest:
    """An ``embedContent`` body (``batch=False``) or a ``batchEmbedContents`` one → canonical request.

    Every text part of a content is joined into one input; a batch must ask for one dimensionality.
    """
    if batch:
        items = body.get("requests")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise InvalidRequestError("'requests' must be a non-empty list of objects", param="requests")
    else:
        items = [body]
    texts = [
        _decode_content(item.get("content"), f"requests.{i}.content" if batch else "content")
        for i, item in enumerate(items)
    ]
    dims = {item.get("outputDimensionality") for item in items}
    if len(dims) > 1:
        raise InvalidRequestError("all requests must ask for the same outputDimensionality", param="requests")
    dimensions = dims.pop()
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise InvalidRequestError("'outputDimensionality' must be a positive integer", param="outputDimensionality")
    return EmbeddingRequest(model=model, inputs=texts, dimensions=dimensions)


def encode_response(response: EmbeddingResponse, /, *, batch: bool = False) -> dict[str, Any]:
    """Canonical answer → ``{"embedding": {"values"}}`` or, for a batch, ``{"embeddings": [...]}``."""
    vectors = [{"values": vector} for vector in response.vectors]
    return {"embeddings": vectors} if batch else {"embedding": vectors[0]}


def encode_request(request: EmbeddingRequest, /) -> dict[str, Any]:
    """Canonical request → a ``batchEmbedContents`` body (``request.model`` is Google's model name)."""
    item: dict[str, Any] = {"model": f"models/{request.model.removeprefix('models/')}"}
    if request.dimensions:
        item["outputDimensionality"] = request.dimensions
    return {"requests": [{**item, "content": {"parts": [{"text": text}]}} for text in request.inputs]}


def decode_response(body: dict[str, Any], /, *, model: str = "") -> EmbeddingResponse:
    """A ``batchEmbedContents`` (or ``embedContent``) answer → canonical, usage left at 0 (unreported);
    a malformed answer raises ``KeyError``/``TypeError``, which the adapter reports as an upstream error."""
    rows = body["embeddings"] if "embeddings" in body else [body["embedding"]]
    return EmbeddingResponse(vectors=[row["values"] for row in rows], model=model)


def _decode_content(content: Any, where: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise InvalidRequestError(f"'{where}' must be a Content object with 'parts'", param=where)
    return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
