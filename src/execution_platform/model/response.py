"""The canonical chat response, usage and attempt records."""

from typing import Literal

from pydantic import Field

from ._base import CanonicalModel
from .messages import Message

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class Usage(CanonicalModel):
    """Token counts. ``input_tokens`` includes cached ones; the cached share is also reported apart.

    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written for an hour (Anthropic prices
    it higher than the default five minutes).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class Attempt(CanonicalModel):
    """One upstream attempt made while serving a call (retries and fallbacks included)."""

    provider: str
    model: str
    deployment: str | None = None
    status: Literal["ok", "error", "skipped"] = "ok"
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0


class ChatResponse(CanonicalModel):
    """A complete answer: one assistant message plus what it cost and where it came from."""

    id: str
    model: str
    message: Message
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    provider: str | None = None
    created: int = 0
    cost_usd: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    # Provider-native finish reason, for logs and for faithful re-encoding (e.g. Anthropic stop_sequence).
    raw_finish_reason: str | None = None
    stop_sequence: str | None = None
    # Handle to continue the conversation upstream (pass it back as ``metadata.session_id``).
    session_id: str | None = None
    # ``x-ratelimit-*`` of the limits the request counted against (set by a metered client; empty when
    # none applied). Response headers for a server to copy, never part of any wire body.
    rate_limits: dict[str, str] = Field(default_factory=dict, exclude=True)
    @property
    def wire_body(self) -> tuple[str, bytes] | None:
        """``(format, bytes)`` of the upstream answer this response was decoded from, if kept (when the
        request asked for it: ``ChatRequest.wire``). Kept like that hint: carried by copies, never
        serialized, ignored by equality, free when unset."""
        return self.__dict__.get(_WIRE_BODY)

    def set_wire_body(self, body: tuple[str, bytes] | None) -> None:
        self.__dict__[_WIRE_BODY] = body


_WIRE_BODY = "_wire_body"
