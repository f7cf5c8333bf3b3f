"""Tools: a registry of callable tools, the tool loop, sandboxed built-ins and MCP servers.

``execution_platform.tools.mcp_servers`` (MCP) is imported on demand, since the ``mcp`` package is
heavy and most callers never need it.
"""

from .events import (
    AgentEvent,
    LoopEvent,
    RunEnd,
    RunResult,
    StepEnd,
    StepStart,
    ToolExecutionResult,
    ToolExecutionStart,
)
from .loop import Agent, run
from .registry import ArgumentsError, Tool, ToolRegistry, function_tool, result_text, to_jsonable

__all__ = [
    "Agent",
    "AgentEvent",
    "ArgumentsError",
    "LoopEvent",
    "RunEnd",
    "RunResult",
    "StepEnd",
    "StepStart",
    "Tool",
    "ToolExecutionResult",
    "ToolExecutionStart",
    "ToolRegistry",
    "function_tool",
    "result_text",
    "run",
    "to_jsonable",
]
