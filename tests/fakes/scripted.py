"""The one in-process scripted :class:`Provider` for tests that need a provider but no HTTP at all.

Routing, money and tool-loop tests test the layers above the adapters; what they need from "the
upstream" is a queue of outcomes. Each call takes the next step of the queue (``default`` when it is
empty) and plays it, non-streaming or as a real stream of canonical events:

* :class:`Answer`: a plain text turn (delay, stream chunks, usage, reported cost);
* :class:`Fail`: an error, raised before any event or after ``after_events`` events of a partial answer;
* a :class:`ChatResponse`: exactly that turn (tool calls included), streamed in four-character deltas.

The wire-faithful fakes next to this module stand in for real upstreams over HTTP; use them whenever
the adapter itself is part of what a test checks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from execution_platform.errors import EPError
from execution_platform.model import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    StartEvent,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from execution_platform.providers.base import Provider


@dataclass
class Answer:
    """A text turn: ``text`` (or the joined ``chunks``), streamed as ``chunks`` (default: its words)."""

    text: str | None = None
    delay: float = 0.0
    chunks: list[str] | None = None
    chunk_delay: float = 0.0  # before each streamed chunk
    usage: Usage = field(default_factory=lambda: Usage(input_tokens=1, output_tokens=1))
    cost_usd: float | None = None  # what the upstream itself reports, if anything

    @property
    def full_text(self) -> str:
        if self.text is not None:
            return self.text
        return "".join(self.chunks) if self.chunks is not None else "ok"

    @property
    def deltas(self) -> list[str]:
        return self.chunks if self.chunks is not None else self.full_text.split(" ")


@dataclass
class Fail:
    """Raise ``error`` — before any event, or after ``after_events`` events of ``partial`` when streaming."""

    error: EPError
    after_events: int = 0
    delay: float = 0.0
    partial: Answer = field(default_factory=lambda: Answer("partial answer"))


Step = Answer | Fail | ChatResponse


class ScriptedProvider(Provider):
    """Plays a queue of steps (see the module docstring); records every request it was sent."""

    def __init__(
        self, name: str = "scripted", *, caps: Capabilities | None = None, default: Step | None = None
    ) -> None:
        self.name = name
        self.caps = caps or Capabilities()
        self.default: Step = default if default is not None else Answer(f"from {name}")
        self.queue: deque[Step] = deque()
        self.calls: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed_streams = 0  # streams that ended: finished, failed, or closed by the consumer

    def then(self, *steps: Step) -> ScriptedProvider:
        """Queue ``steps`` after those already queued."""
        self.queue.extend(steps)
        return self

    def capabilities(self, model: str) -> Capabilities:
        return self.caps

    def _next(self, request: ChatRequest) -> Step:
        self.calls.append(request)
        return self.queue.popleft() if self.queue else self.default

    def _response(self, answer: Answer, request: ChatRequest) -> ChatResponse:
        return ChatResponse(
            id="r1", model=request.model, provider=self.name, cost_usd=answer.cost_usd,
            message=Message(role="assistant", content=answer.full_text), usage=answer.usage,
        )

    async def chat(self, request: ChatRequest) -> ChatResponse:
        step = self._next(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if isinstance(step, ChatResponse):
                return step
            await asyncio.sleep(step.delay)
            if isinstance(step, Fail):
                raise step.error
            return self._response(step, request)
        finally:
            self.in_flight -= 1

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        step = self._next(request)
        try:
            if isinstance(step, ChatResponse):
                for event in _response_events(step, self.name):
                    yield event
                return
            await asyncio.sleep(step.delay)
            answer = step.partial if isinstance(step, Fail) else step
            events: list[tuple[StreamEvent, float]] = [(StartEvent(id="r1", model=request.model, provider=self.name), 0)]
            events += [(TextDelta(text=piece), answer.chunk_delay) for piece in answer.deltas]
            events += [(UsageEvent(usage=answer.usage), 0), (FinishEvent(reason="stop"), 0)]
            for i, (event, pause) in enumerate(events):
                if isinstance(step, Fail) and i == step.after_events:
                    raise step.error
                if pause:
                    await asyncio.sleep(pause)
                yield event
        finally:
            self.closed_streams += 1


def _response_events(response: ChatResponse, provider: str) -> list[StreamEvent]:
    """``response`` as the canonical stream an adapter would produce for it."""
    events: list[StreamEvent] = [StartEvent(id=response.id, model=response.model, provider=provider)]
    text = response.message.text
    events += [TextDelta(text=text[i : i + 4]) for i in range(0, len(text), 4)]
    for index, call in enumerate(response.message.tool_calls):
        events.append(ToolCallStart(index=index, id=call.id, name=call.name))
        raw = call.raw_arguments if call.raw_arguments is not None else orjson.dumps(call.arguments).decode()
        events.append(ToolCallDelta(index=index, arguments=raw))
        if call.raw_arguments is None:
            events.append(ToolCallEnd(index=index, tool_call=call))
    return [*events, UsageEvent(usage=response.usage), FinishEvent(reason=response.finish_reason)]
