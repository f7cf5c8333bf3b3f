"""Loop-level events: what the tool loop adds around the model's own canonical stream events.

An agent run streams, in order, for every step: :class:`StepStart`, the model's canonical
``StreamEvent``s (start, deltas, tool calls, usage, finish), :class:`StepEnd` with the assembled
response, then one :class:`ToolExecutionStart` per requested call and one :class:`ToolExecutionResult`
per call as each finishes. The run ends with :class:`RunEnd`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model import ChatResponse, Message, StreamEvent, Usage


class _LoopEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepStart(_LoopEvent):
    type: Literal["step_start"] = "step_start"
    step: int


class StepEnd(_LoopEvent):
    type: Literal["step_end"] = "step_end"
    step: int
    response: ChatResponse


class ToolExecutionStart(_LoopEvent):
    type: Literal["tool_execution_start"] = "tool_execution_start"
    step: int
    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolExecutionResult(_LoopEvent):
    """One finished call. ``content`` is exactly what the model receives; ``result`` the raw value."""

    type: Literal["tool_execution_result"] = "tool_execution_result"
    step: int
    call_id: str
    name: str
    is_error: bool = False
    content: str
    result: Any = None
    error_type: str | None = None  # an EPError ``type`` code when is_error
    duration_ms: float = 0.0


StopReason = Literal["final_answer", "max_steps"]


class RunResult(_LoopEvent):
    """The outcome of a run: the final answer (if any) and the whole conversation it took."""

    text: str
    stop_reason: StopReason
    steps: int
    usage: Usage
    messages: list[Message]
    response: ChatResponse | None = None


class RunEnd(_LoopEvent):
    type: Literal["run_end"] = "run_end"
    result: RunResult


LoopEvent = Annotated[
    StepStart | StepEnd | ToolExecutionStart | ToolExecutionResult | RunEnd, Field(discriminator="type")
]
AgentEvent = StreamEvent | StepStart | StepEnd | ToolExecutionStart | ToolExecutionResult | RunEnd
