"""Content parts: what a message is made of."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ._base import CanonicalModel


class CacheControl(CanonicalModel):
    """A prompt-cache breakpoint: the prompt up to and including the marked item may be cached.

    It is a hint, not a contract: upstreams with explicit breakpoints (Anthropic ``cache_control``)
    receive it, others cache on their own (OpenAI, Gemini implicit caching) and it is dropped there.
    ``ttl`` is the wire value (``"5m"``, ``"1h"``); unset means the upstream's default.
    """

    type: Literal["ephemeral"] = "ephemeral"
    ttl: str | None = None


class TextPart(CanonicalModel):
    type: Literal["text"] = "text"
    text: str
    # Gemini may attach an opaque thought signature to a text part; it must be sent back verbatim.
    signature: str | None = None
    cache_control: CacheControl | None = None


class ImagePart(CanonicalModel):
    """An image by URL or inline base64 data (exactly one of the two)."""

    type: Literal["image"] = "image"
    url: str | None = None
    data: str | None = None  # base64, no data: prefix
    media_type: str | None = None  # e.g. image/png; required with data
    detail: Literal["auto", "low", "high"] | None = None
    cache_control: CacheControl | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ImagePart":
        if (self.url is None) == (self.data is None):
            raise ValueError("an image part needs exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError("an inline image part needs media_type")
        return self


class ThinkingPart(CanonicalModel):
    """Model reasoning (Anthropic thinking blocks, Gemini thoughts), kept so it can round-trip.

    ``redacted`` marks Anthropic ``redacted_thinking`` blocks, whose opaque payload lives in ``data``.
    """

    type: Literal["thinking"] = "thinking"
    text: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None


ContentPart = Annotated[TextPart | ImagePart | ThinkingPart, Field(discriminator="type")]
