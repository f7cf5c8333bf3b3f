"""Canonical request → Claude Code run: the prompt, the system prompt and the CLI options.

Claude Code is an agent, not a completion endpoint, so the mapping is not one-to-one:

* The prompt is the conversation's last user turn. Earlier turns are either already known to the CLI
  (``metadata.session_id`` set: the session is resumed with ``--resume``) or folded into the prompt
  as a transcript, so a stateless caller (an OpenAI-style client resending history) still gives the
  agent its context.
* System and developer messages become the system prompt, appended to Claude Code's own prompt by
  default (which carries the instructions for its tools) or replacing it when asked.
* Client-defined function tools cannot be offered: the agent runs its own tools (and MCP servers),
  so they are refused, as are stop sequences and structured output. Sampling parameters
  (temperature, top_p, seed) have no CLI counterpart and are ignored; ``max_tokens`` becomes
  ``CLAUDE_CODE_MAX_OUTPUT_TOKENS`` and ``reasoning`` the thinking budget or effort.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..codecs.passthrough import drop_all, drop_field
from ..errors import InvalidRequestError, UnsupportedParameterError
from ..model import ChatRequest, ImagePart, Message

# Per-request overrides a caller may put in ``provider_options`` (other keys are refused, not dropped).
OPTION_KEYS = frozenset({
    "max_turns", "allowed_tools", "disallowed_tools", "permission_mode", "mcp_servers",
    "max_budget_usd", "effort", "fork_session", "replace_system_prompt",
})
PERMISSION_MODES = frozenset({"default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto"})
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
# Names the CLI resolves itself; ``default`` means "whatever the CLI is configured with".
DEFAULT_MODEL_NAMES = frozenset({"default", ""})


@dataclass
class AgentDefaults:
    """Provider-level settings that a request's ``provider_options`` may override."""

    permission_mode: str | None = None
    max_turns: int | None = None
    allowed_tools: list[str] = field(default_factory=list)
    disallowed_tools: list[str] = field(default_factory=list)
    mcp_servers: dict[str, Any] = field(default_factory=dict)
    replace_system_prompt: bool = False


def check_supported(request: ChatRequest) -> None:
    """Refuse what Claude Code cannot honour, naming the parameter."""
    if request.tools:
        raise UnsupportedParameterError(
            "claude_agent runs its own tools; client-defined function tools are not supported "
            "(give the agent MCP servers instead)", param="tools",
        )
    if request.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameterError("claude_agent does not support forcing a tool", param="tool_choice")
    if request.response_format is not None and request.response_format.type != "text":
        raise UnsupportedParameterError(
            "claude_agent does not support response_format", param="response_format"
        )
    if request.stop:
        raise UnsupportedParameterError("claude_agent does not support stop sequences", param="stop")
    for name in ("top_k", "frequency_penalty", "presence_penalty", "seed"):
        if getattr(request, name) is not None:
            drop_field(name, "claude_agent")
    drop_all(request, "claude_agent")
    unknown = sorted(set(request.provider_options) - OPTION_KEYS)
    if unknown:
        raise UnsupportedParameterError(
            f"claude_agent does not understand provider_options {', '.join(unknown)}; "
            f"known: {', '.join(sorted(OPTION_KEYS))}",
            param=f"provider_options.{unknown[0]}",
        )


def _text_only(message: Message, what: str) -> str:
    if any(isinstance(p, ImagePart) for p in message.content):
        raise UnsupportedParameterError(f"claude_agent accepts text only ({what} has an image)", param="messages")
    return message.text


def build_prompt(request: ChatRequest, *, resuming: bool) -> str:
    """The last user turn, preceded by a transcript of earlier turns unless the session is resumed."""
    turns = [m for m in request.messages if m.role not in ("system", "developer")]
    if not turns or turns[-1].role != "user":
        raise InvalidRequestError("claude_agent needs the conversation to end with a user message", param="messages")
    last = _text_only(turns[-1], "the last user message")
    if not last.strip():
        raise InvalidRequestError("the last user message is empty", param="messages")
    earlier = turns[:-1]
    if resuming or not earlier:
        return last
    lines = [_render_turn(m) for m in earlier]
    history = "\n\n".join(line for line in lines if line)
    return (
        "Earlier turns of this conversation, for context:\n<conversation_history>\n"
        f"{history}\n</conversation_history>\n\n{last}"
    )


def _render_turn(message: Message) -> str:
    text = _text_only(message, f"a {message.role} message")
    if message.role == "user":
        return f"User: {text}"
    if message.role == "assistant":
        calls = [f"[called tool {c.name} with {orjson.dumps(c.arguments).decode()}]" for c in message.tool_calls]
        return "Assistant: " + "\n".join(part for part in [text, *calls] if part)
    status = "error" if message.is_error else "result"
    return f"Tool {status} ({message.name or message.tool_call_id or 'tool'}): {text}"


def system_prompt(request: ChatRequest, *, replace: bool) -> str | dict[str, Any]:
    """Claude Code's own prompt plus the caller's system text, or the caller's text alone."""
    text = "\n\n".join(
        _text_only(m, "a system message") for m in request.messages if m.role in ("system", "developer")
    ).strip()
    if replace:
        return text
    preset: dict[str, Any] = {"type": "preset", "preset": "claude_code"}
    if text:
        preset["append"] = text
    return preset


def _string_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"provider_options.{name} must be a list of tool names", param=f"provider_options.{name}")
    return value


def option_fields(request: ChatRequest, defaults: AgentDefaults) -> dict[str, Any]:
    """Keyword arguments for ``ClaudeAgentOptions`` derived from the request (cwd/env/cli_path aside)."""
    opts = request.provider_options
    model = request.model.strip()
    fields: dict[str, Any] = {
        "model": None if model in DEFAULT_MODEL_NAMES else model,
        "system_prompt": system_prompt(request, replace=bool(opts.get("replace_system_prompt", defaults.replace_system_prompt))),
        "allowed_tools": _string_list(opts.get("allowed_tools", defaults.allowed_tools), "allowed_tools"),
        "disallowed_tools": _string_list(opts.get("disallowed_tools", defaults.disallowed_tools), "disallowed_tools"),
        "mcp_servers": {**defaults.mcp_servers, **opts.get("mcp_servers", {})},
    }
    max_turns = opts.get("max_turns", defaults.max_turns)
    if max_turns is not None:
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
            raise InvalidRequestError("max_turns must be a positive integer", param="provider_options.max_turns")
        fields["max_turns"] = max_turns
    mode = opts.get("permission_mode", defaults.permission_mode)
    if mode is not None:
        if mode not in PERMISSION_MODES:
            raise InvalidRequestError(
                f"permission_mode must be one of {', '.join(sorted(PERMISSION_MODES))}",
                param="provider_options.permission_mode",
            )
        fields["permission_mode"] = mode
    if "max_budget_usd" in opts:
        budget = opts["max_budget_usd"]
        if not isinstance(budget, int | float) or isinstance(budget, bool) or not 0 < budget < float("inf"):
            raise InvalidRequestError("max_budget_usd must be a positive number", param="provider_options.max_budget_usd")
        fields["max_budget_usd"] = float(budget)
    if opts.get("fork_session"):
        fields["fork_session"] = True
    if request.metadata.session_id:
        fields["resume"] = request.metadata.session_id
    effort = opts.get("effort")
    if request.reasoning is not None:
        if request.reasoning.budget_tokens:
            fields["thinking"] = {"type": "enabled", "budget_tokens": request.reasoning.budget_tokens}
        if request.reasoning.effort and effort is None:
            effort = _EFFORT[request.reasoning.effort]
    if effort is not None:
        fields["effort"] = effort
    _check_arguments(fields)
    return fields


# Where a field of the CLI's command line came from, for the 400 that names it.
_ARGUMENT_PARAMS = {"model": "model", "system_prompt": "messages", "resume": "metadata.session_id"}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _check_arguments(fields: dict[str, Any]) -> None:
    """The SDK passes these to the Claude Code CLI as command-line arguments, and no operating system
    starts a process whose arguments hold a NUL character: refuse such a request here, naming its field,
    rather than let the start fail and come back as an upstream connection error (a 502 for bad input)."""
    for name, value in fields.items():
        if name != "mcp_servers" and any("\x00" in text for text in _strings(value)):
            param = _ARGUMENT_PARAMS.get(name, f"provider_options.{name}")
            raise InvalidRequestError(f"claude_agent cannot pass a NUL character in {param} to the Claude Code CLI",
                                      param=param)
