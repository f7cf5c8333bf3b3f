"""The canonical stream-event vocabulary.

Every provider stream is decoded into these events and every served stream is encoded from them.
Tool calls are announced (start), grow (argument deltas) and are closed with the parsed call (end),
so consumers never have to assemble JSON fragments themselves.
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import CanonicalModel
from .messages import ToolCall
from .response import FinishReason, Usage


class StartEvent(CanonicalModel):
    type: Literal["start"] = "start"
    id: str
    model: str
    provider: str | None = None
    # Conversation handle for providers that keep server-side state (the Claude agent's session).
    session_id: str | None = None


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
    # The provider's own price for the call, when it reports one (Claude Code's total_cost_usd).
    cost_usd: float | None = None


class FinishEvent(CanonicalModel):
    type: Literal["finish"] = "finish"
    reason: FinishReason
    raw_reason: str | None = None
    stop_sequence: str | None = None


class AgentToolUse(CanonicalModel):
    """A tool the provider ran on its own (e.g. Claude Code's Read or Bash), shown for observation.

    Deliberately not a ``ToolCallStart``/``ToolCallEnd``: those ask the client to execute the call,
    while this one has already been executed upstream. ``parent_id`` links calls made by a sub-agent
    to the tool use that started it.
    """

    type: Literal["agent_tool_use"] = "agent_tool_use"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None


class AgentToolResult(CanonicalModel):
    """The outcome of an :class:`AgentToolUse`, tied to it by ``tool_call_id``."""

    type: Literal["agent_tool_result"] = "agent_tool_result"
    tool_call_id: str
    content: str = ""
    is_error: bool = False
    parent_id: str | None = None


class ErrorEvent(CanonicalModel):
    """A failure after the stream started; ``error_type`` is an ``EPError.type`` code."""

    type: Literal["error"] = "error"
    error_type: str
    message: str
    retryable: bool = False


class WireFrame(CanonicalModel):
    """One upstream SSE frame forwarded as bytes, when the client speaks the upstream's wire format.

    Only an adapter asked for its own format (``ChatRequest.wire``) emits these; the canonical events
    the frame implies for metering (start, usage, finish) follow it, and a consumer serving the frame
    ignores those. ``text`` is the frame's generated text, for estimates when a stream is cut short;
    ``pieces`` how many upstream deltas that text came in (frames of one read travel as one event),
    so timings per token stay what they are on the canonical path.
    """

    type: Literal["wire"] = "wire"
    format: str
    data: bytes
    text: str = ""
    pieces: int = 0


StreamEvent = Annotated[
    StartEvent
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageEvent
    | FinishEvent
    | ErrorEvent
    | AgentToolUse
    | AgentToolResult
    | WireFrame,
    Field(discriminator="type"),
]
