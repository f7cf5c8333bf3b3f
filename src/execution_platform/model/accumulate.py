"""Fold a canonical event stream back into a ``ChatResponse``.

Used by the SDK (``stream`` → final result), by the gateway (ledger rows for streamed calls) and by the
contract suite (a streamed answer must equal the non-streamed one).
"""

import orjson

from .content import ContentPart, TextPart, ThinkingPart
from .events import (
    ErrorEvent,
    FinishEvent,
    StartEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
)
from .messages import Message, ToolCall
from .response import ChatResponse, FinishReason, Usage


class StreamAccumulator:
    """Stateful builder; feed events with :meth:`add`, read :meth:`response` at any time."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.provider: str | None = None
        self.parts: list[ContentPart] = []
        self.usage = Usage()
        self.finish_reason: FinishReason | None = None
        self.raw_finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.error: ErrorEvent | None = None
        self.session_id: str | None = None
        self.cost_usd: float | None = None
        self._calls: dict[int, ToolCall] = {}
        self._args: dict[int, list[str]] = {}
        self._done: dict[int, ToolCall] = {}

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            last = self.parts[-1] if self.parts else None
            if isinstance(last, TextPart) and last.signature is None:
                last.text += event.text
                last.signature = event.signature
            else:
                self.parts.append(TextPart(text=event.text, signature=event.signature))
        elif isinstance(event, ThinkingDelta):
            self._add_thinking(event)
        elif isinstance(event, ToolCallStart):
            self._calls[event.index] = ToolCall(id=event.id, name=event.name)
            self._args[event.index] = []
        elif isinstance(event, ToolCallDelta):
            self._args.setdefault(event.index, []).append(event.arguments)
        elif isinstance(event, ToolCallEnd):
            self._done[event.index] = event.tool_call
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
            if event.cost_usd is not None:
                self.cost_usd = event.cost_usd
        elif isinstance(event, FinishEvent):
            self.finish_reason = event.reason
            self.raw_finish_reason = event.raw_reason
            self.stop_sequence = event.stop_sequence
        elif isinstance(event, StartEvent):
            self.id, self.model, self.provider = event.id, event.model, event.provider
            self.session_id = event.session_id
        elif isinstance(event, ErrorEvent):
            self.error = event

    def _add_thinking(self, event: ThinkingDelta) -> None:
        last = self.parts[-1] if self.parts else None
        if event.redacted:
            self.parts.append(ThinkingPart(redacted=True, data=event.data))
        elif isinstance(last, ThinkingPart) and not last.redacted and last.signature is None:
            last.text += event.text
            last.signature = event.signature
        else:
            self.parts.append(ThinkingPart(text=event.text, signature=event.signature))

    @property
    def tool_calls(self) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(set(self._calls) | set(self._done)):
            if index in self._done:
                calls.append(self._done[index])
                continue
            call = self._calls[index]
            raw = "".join(self._args.get(index, []))
            try:
                args = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                args = None
            if isinstance(args, dict):
                calls.append(call.model_copy(update={"arguments": args}))
            else:
                calls.append(call.model_copy(update={"raw_arguments": raw}))
        return calls

    def response(self) -> ChatResponse:
        calls = self.tool_calls
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        return ChatResponse(
            id=self.id,
            model=self.model,
            provider=self.provider,
            message=Message(role="assistant", content=list(self.parts), tool_calls=calls),
            finish_reason=reason,
            usage=self.usage,
            raw_finish_reason=self.raw_finish_reason,
            stop_sequence=self.stop_sequence,
            cost_usd=self.cost_usd,
            session_id=self.session_id,
        )
