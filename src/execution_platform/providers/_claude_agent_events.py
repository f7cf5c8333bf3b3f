"""Claude Agent SDK messages → canonical stream events, and CLI failures → the error taxonomy.

What a caller sees of an agent run:

* ``StartEvent`` (with the CLI's ``session_id``) when the CLI announces its session;
* ``TextDelta``/``ThinkingDelta`` for the main agent's words — token by token from the forwarded
  Anthropic stream events when partial messages are on, else one delta per block; text of separate
  model turns is joined with a blank line so the folded answer reads naturally;
* ``AgentToolUse``/``AgentToolResult`` for every tool the agent ran itself (ids are Claude Code's
  ``toolu_…`` ids; ``parent_id`` marks a sub-agent's calls). They are not ``ToolCall*`` events on
  purpose: those would ask the client to run the tool again, and wire encoders that do not know
  the agent events simply leave them out;
* one ``UsageEvent`` (the run's total usage and ``total_cost_usd``) and the ``FinishEvent``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    ProcessError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk import StreamEvent as SDKStreamEvent

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    EPError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
    error_for_status,
)
from ..model import (
    AgentToolResult,
    AgentToolUse,
    FinishEvent,
    FinishReason,
    StartEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    Usage,
    UsageEvent,
)

PROVIDER = "claude_agent"
_AUTH_TEXT = re.compile(
    r"invalid api key|/login|not logged in|please log in|authentication|unauthori[sz]ed|oauth token|"
    r"x-api-key|credit balance",
    re.IGNORECASE,
)
_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "tool_use": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length", "refusal": "content_filter",
}
# The run was cut short by its own limits: partial work stands, reported like a truncated answer.
_LIMIT_SUBTYPES = frozenset({"error_max_turns", "error_max_budget_usd"})


def _tool_result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for item in content:
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        elif isinstance(item, dict):
            parts.append(f"[{item.get('type', 'content')}]")
    return "\n".join(parts)


def usage_from_result(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


class EventMapper:
    """Stateful translation of one run's SDK messages; ``finished`` turns true at the result."""

    def __init__(self, requested_model: str) -> None:
        self.requested_model = requested_model
        self.session_id: str | None = None
        self.started = False
        self.finished = False
        self.emitted_output = False
        self._streamed_ids: set[str] = set()
        self._current_stream_id = "stream"
        self._text_turns: set[str] = set()
        self._last_text_turn: str | None = None
        self._assistant_error: str | None = None

    # -- helpers --------------------------------------------------------------------------------
    def _start(self, model: str | None) -> list[StreamEvent]:
        if self.started:
            return []
        self.started = True
        return [StartEvent(id=f"agent-{uuid.uuid4().hex}", model=model or self.requested_model,
                           provider=PROVIDER, session_id=self.session_id)]

    def _text(self, turn: str, value: str) -> list[StreamEvent]:
        if not value:
            return []
        events: list[StreamEvent] = []
        if self._last_text_turn is not None and turn != self._last_text_turn:
            events.append(TextDelta(text="\n\n"))
        self._last_text_turn = turn
        self.emitted_output = True
        events.append(TextDelta(text=value))
        return events

    # -- the mapping ----------------------------------------------------------------------------
    def feed(self, message: Any) -> list[StreamEvent]:
        session = getattr(message, "session_id", None) or (
            message.data.get("session_id") if isinstance(message, SystemMessage) else None
        )
        if session and not self.session_id:
            self.session_id = session
        if isinstance(message, SystemMessage):
            if message.subtype == "init":
                return self._start(message.data.get("model"))
            return []
        events = self._start(getattr(message, "model", None))
        if isinstance(message, SDKStreamEvent):
            events += self._stream_event(message)
        elif isinstance(message, AssistantMessage):
            events += self._assistant(message)
        elif isinstance(message, UserMessage):
            events += self._user(message)
        elif isinstance(message, ResultMessage):
            events += self._result(message)
        return events

    def _stream_event(self, message: SDKStreamEvent) -> list[StreamEvent]:
        if message.parent_tool_use_id is not None:
            return []
        event = message.event
        kind = event.get("type")
        if kind == "message_start":
            msg_id = (event.get("message") or {}).get("id")
            if msg_id:
                self._streamed_ids.add(msg_id)
                self._current_stream_id = msg_id
            return []
        if kind != "content_block_delta":
            return []
        delta = event.get("delta") or {}
        turn = self._current_stream_id
        if delta.get("type") == "text_delta":
            return self._text(turn, delta.get("text", ""))
        if delta.get("type") == "thinking_delta":
            self.emitted_output = True
            return [ThinkingDelta(text=delta.get("thinking", ""))]
        if delta.get("type") == "signature_delta":
            return [ThinkingDelta(signature=delta.get("signature"))]
        return []

    def _assistant(self, message: AssistantMessage) -> list[StreamEvent]:
        if message.error:
            # Claude Code's synthetic note on a failed API call ("API Error: 429 …"). The error result
            # that follows raises it; streamed as text it would read as the answer and commit the
            # stream, so routing could no longer retry or fall back.
            self._assistant_error = str(message.error)
            return []
        events: list[StreamEvent] = []
        main = message.parent_tool_use_id is None
        streamed = message.message_id is not None and message.message_id in self._streamed_ids
        turn = message.message_id or f"turn-{id(message)}"
        for block in message.content:
            if isinstance(block, TextBlock) and main and not streamed:
                events += self._text(turn, block.text)
            elif isinstance(block, ThinkingBlock) and main and not streamed:
                self.emitted_output = True
                events.append(ThinkingDelta(text=block.thinking, signature=block.signature or None))
            elif isinstance(block, ToolUseBlock):
                self.emitted_output = True
                events.append(AgentToolUse(id=block.id, name=block.name, arguments=dict(block.input or {}),
                                           parent_id=message.parent_tool_use_id))
        return events

    def _user(self, message: UserMessage) -> list[StreamEvent]:
        if isinstance(message.content, str):
            return []
        return [
            AgentToolResult(tool_call_id=block.tool_use_id, content=_tool_result_text(block.content),
                            is_error=bool(block.is_error), parent_id=message.parent_tool_use_id)
            for block in message.content
            if isinstance(block, ToolResultBlock)
        ]

    def _result(self, message: ResultMessage) -> list[StreamEvent]:
        self.session_id = message.session_id or self.session_id
        if message.is_error and message.subtype not in _LIMIT_SUBTYPES:
            raise error_from_result(_result_data(message), self._assistant_error)
        self.finished = True
        if message.is_error:
            reason: FinishReason = "length"
            raw = message.subtype
        else:
            reason = _STOP_REASONS.get(message.stop_reason or "end_turn", "stop")
            raw = message.stop_reason or message.subtype
        return [
            UsageEvent(usage=usage_from_result(message.usage), cost_usd=message.total_cost_usd),
            FinishEvent(reason=reason, raw_reason=raw),
        ]


def _result_data(message: ResultMessage) -> dict[str, Any]:
    return {
        "subtype": message.subtype, "result": message.result, "errors": message.errors,
        "api_error_status": message.api_error_status, "session_id": message.session_id,
    }


def error_from_result(data: dict[str, Any], assistant_error: str | None = None) -> EPError:
    """An ``is_error`` result (or the SDK's ``ResultError`` payload) as a platform error."""
    errors = [e for e in (data.get("errors") or []) if isinstance(e, str) and e.strip()]
    text = "; ".join(errors) or (data.get("result") or "").strip() or str(data.get("subtype") or "error")
    status = data.get("api_error_status")
    kind = (assistant_error or "").lower()
    message = f"{PROVIDER}: {text}"
    if kind == "authentication_failed" or status == 401 or _AUTH_TEXT.search(text):
        return AuthenticationError(
            f"{message} (Claude Code is not logged in or its credentials were refused: set "
            "EP_ANTHROPIC_API_KEY or log the CLI in)", provider=PROVIDER, upstream_status=status,
        )
    if isinstance(status, int) and status >= 400:
        return error_for_status(status, message, provider=PROVIDER)
    lowered = text.lower()
    if kind == "rate_limit" or "rate limit" in lowered or "rate_limit" in lowered:
        return RateLimitError(message, provider=PROVIDER)
    if "overloaded" in lowered:
        return OverloadedError(message, provider=PROVIDER)
    if kind == "billing_error":
        return PermissionDeniedError(message, provider=PROVIDER)
    if "prompt is too long" in lowered or "context window" in lowered:
        return error_for_status(400, message, provider=PROVIDER)
    return UpstreamServerError(message, provider=PROVIDER, code=str(data.get("subtype") or "") or None)


def error_from_exception(exc: BaseException, *, stderr: str, emitted: bool) -> EPError:
    """A failure raised by the SDK (process, transport, protocol) as a platform error."""
    if isinstance(exc, EPError):
        return exc
    detail = stderr.strip()[-2000:]
    if isinstance(exc, CLINotFoundError):
        return ConfigurationError(
            f"{PROVIDER}: the Claude Code CLI was not found ({exc}); install claude-agent-sdk with its "
            "bundled CLI or pass cli_path", provider=PROVIDER,
        )
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("subtype"):
        return error_from_result(data)
    if _AUTH_TEXT.search(detail):
        return AuthenticationError(
            f"{PROVIDER}: Claude Code is not logged in or its credentials were refused: {detail}",
            provider=PROVIDER,
        )
    if isinstance(exc, ProcessError):
        text = f"{PROVIDER}: the Claude Code CLI exited with code {exc.exit_code}"
        text += f": {detail}" if detail else ""
        if emitted:
            return StreamInterruptedError(text, provider=PROVIDER)
        return UpstreamServerError(text, provider=PROVIDER, code="cli_process_error")
    if isinstance(exc, CLIConnectionError):
        if "Working directory" in str(exc):
            return ConfigurationError(f"{PROVIDER}: {exc}", provider=PROVIDER)
        return UpstreamConnectionError(f"{PROVIDER}: cannot talk to the Claude Code CLI: {exc}", provider=PROVIDER)
    if isinstance(exc, CLIJSONDecodeError):
        return UpstreamServerError(f"{PROVIDER}: the CLI wrote malformed output", provider=PROVIDER)
    if "timeout" in str(exc).lower():
        return UpstreamTimeoutError(f"{PROVIDER}: {exc}", provider=PROVIDER)
    return UpstreamServerError(f"{PROVIDER}: {type(exc).__name__}: {exc}", provider=PROVIDER)
