"""Provider-neutral scripting vocabulary for the fakes.

A test enqueues :class:`Reply` (a successful model turn) or :class:`Fault` objects; each fake renders
them in its own wire format, streaming or not, depending on what the client asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class ToolCallSpec:
    name: str
    arguments: dict[str, Any]
    id: str | None = None  # fakes invent provider-style ids when None (Gemini has none on the wire)


@dataclass
class Reply:
    """A model turn. ``chunks`` controls how many stream deltas the text is split into."""

    text: str | None = "Hello from the fake upstream."
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    thinking: str | None = None
    thinking_signature: str | None = None
    finish: Literal["stop", "length", "tool_calls", "content_filter"] | None = None  # None: inferred
    input_tokens: int = 12
    output_tokens: int = 7
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    chunks: int = 3
    model: str | None = None  # default: echo the requested model
    echo: bool = False  # answer with the last user message's text instead of ``text``

    @property
    def finish_reason(self) -> str:
        if self.finish:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"


FaultKind = Literal["status", "slow_first_byte", "stall", "disconnect", "malformed_json", "stream_error"]


@dataclass
class Fault:
    """A failure to inject.

    * ``status``: answer ``status`` with the provider's real error body (``error_type`` refines it,
      e.g. ``overloaded_error``, ``context_length_exceeded``) and ``retry_after`` as a header.
    * ``slow_first_byte``: wait ``delay`` seconds before sending headers, then answer ``then``.
    * ``stall``: stream ``after_chunks`` chunks of ``then`` and then go silent for ``delay`` seconds.
    * ``disconnect``: stream ``after_chunks`` chunks of ``then`` and drop the TCP connection.
    * ``malformed_json``: a 200 whose body (or first stream event) is not JSON.
    * ``stream_error``: an in-stream error event (Anthropic ``event: error``) after ``after_chunks``.
    """

    kind: FaultKind
    status: int = 500
    message: str = "injected fault"
    error_type: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    after_chunks: int = 0
    then: Reply | None = None


Script = Reply | Fault
