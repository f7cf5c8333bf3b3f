"""The canonical embeddings call: texts in, one vector per text out.

Embeddings are a provider capability like chat (``Provider.embed``), so they carry what the rest of
the platform needs around a call: ``metadata`` says who pays (the meter reads it as it reads a chat
request's), the response says which provider and model served it, what it cost and which attempts
routing made. How vectors travel on a wire (floats, base64) is the codecs' business, not the model's.
"""

from pydantic import Field

from ._base import CanonicalModel
from .request import RequestMetadata
from .response import Attempt, Usage


class EmbeddingRequest(CanonicalModel):
    """``model`` is an address (``provider/model``) until routing rewrites it to the provider's own name."""

    model: str
    inputs: list[str]
    dimensions: int | None = None  # None: the model's own size
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)


class EmbeddingResponse(CanonicalModel):
    """One vector per input, in input order. ``usage.input_tokens`` is what the upstream reported
    (0 when it reports nothing, as Gemini's ``batchEmbedContents``); the meter estimates then."""

    vectors: list[list[float]]
    model: str
    provider: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    # ``x-ratelimit-*`` of the limits the request counted against (as ``ChatResponse.rate_limits``).
    rate_limits: dict[str, str] = Field(default_factory=dict, exclude=True)
