"""Messages, tool calls and tool results."""

from typing import Any, Literal

from pydantic import Field, field_validator

from ._base import CanonicalModel
from .content import CacheControl, ContentPart, TextPart, ThinkingPart

Role = Literal["system", "developer", "user", "assistant", "tool"]


class ToolCall(CanonicalModel):
    """A call the model asked for. ``id`` is stable across turns (synthesized for Gemini)."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The exact argument text when the model produced something that is not a JSON object.
    raw_arguments: str | None = None
    # Gemini thought signature attached to the functionCall part.
    signature: str | None = None
    cache_control: CacheControl | None = None


class Message(CanonicalModel):
    """One turn. ``content`` accepts a plain string for convenience and is stored as parts.

    Tool results are ``role="tool"`` messages tied to their call by ``tool_call_id``; ``name`` carries
    the tool's name (Gemini needs it) and ``is_error`` marks a failed tool execution.
    ``cache_control`` on a tool message is the breakpoint of the tool result as a whole (Anthropic puts
    it on the ``tool_result`` block); other messages carry breakpoints on their parts.
    """

    role: Role
    content: list[ContentPart] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    cache_control: CacheControl | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _string_to_parts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [TextPart(text=value)]
        if value is None:
            return []
        return value

    @property
    def text(self) -> str:
        """All text parts joined: what a human would call the message's text."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def thinking(self) -> list[ThinkingPart]:
        return [p for p in self.content if isinstance(p, ThinkingPart)]
