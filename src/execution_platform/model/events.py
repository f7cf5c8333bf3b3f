"""The canonical stream-event vocabulary.

Every provider stream is decoded into these events and every served stream is encoded from them.
Tool calls are announced (start), grow (argument deltas) and are closed with the parsed call (end),
so consumers never have to assemble JSON fragments themselves.
"""

from typing import Annotated, Literal

from pydantic import Field

from ._base import CanonicalModel
from .messages import ToolCall
from .response import FinishReason, Usage


class StartEvent(CanonicalModel):
    type: Literal["start"] = "start"
    id: str
    model: str
    provider: str | None = None


class TextDelta(CanonicalModel):
    """``signature`` (Gemini thought signature) closes the current text part when set."""

    type: Literal["text_delta"] = "text_delta"
    text: str
    signature: str | None = None


class ThinkingDelta(CanonicalModel):
    type: Literal["thinking_delta"] = "thinking_delta"
    text: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None


class ToolCallStart(CanonicalModel):
    type: Literal["tool_call_start"] = "tool_call_start"
    index: int
    id: str
    name: str


class ToolCallDelta(CanonicalModel):
    type: Literal["tool_call_delta"] = "tool_call_delta"
    index: int
    arguments: str


class ToolCallEnd(CanonicalModel):
    type: Literal["tool_call_end"] = "tool_call_end"
    index: int
    tool_call: ToolCall


class UsageEvent(CanonicalModel):
    type: Literal["usage"] = "usage"
    usage: Usage


class FinishEvent(CanonicalModel):
    type: Literal["finish"] = "finish"
    reason: FinishReason
    raw_reason: str | None = None
    stop_sequence: str | None = None


class ErrorEvent(CanonicalModel):
    """A failure after the stream started; ``error_type`` is an ``EPError.type`` code."""

    type: Literal["error"] = "error"
    error_type: str
    message: str
    retryable: bool = False


StreamEvent = Annotated[
    StartEvent
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageEvent
    | FinishEvent
    | ErrorEvent,
    Field(discriminator="type"),
]
