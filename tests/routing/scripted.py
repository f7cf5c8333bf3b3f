"""A scripted in-process Provider for routing logic tests that need no HTTP at all."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
    Usage,
    UsageEvent,
)
from execution_platform.providers.base import Provider


@dataclass
class Fail:
    """Raise ``error`` — before any event, or after ``after_events`` events when streaming."""

    error: EPError
    after_events: int = 0
    delay: float = 0.0


@dataclass
class Answer:
    text: str = "ok"
    delay: float = 0.0


class ScriptedProvider(Provider):
    """Answers from a queue of :class:`Answer` / :class:`Fail` steps (``default`` when empty)."""

    def __init__(self, name: str, *, caps: Capabilities | None = None, default: Answer | Fail | None = None) -> None:
        self.name = name
        self.caps = caps or Capabilities()
        self.default = default or Answer(f"from {name}")
        self.queue: deque[Answer | Fail] = deque()
        self.calls: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def then(self, *steps: Answer | Fail) -> ScriptedProvider:
        self.queue.extend(steps)
        return self

    def capabilities(self, model: str) -> Capabilities:
        return self.caps

    def _next(self, request: ChatRequest) -> Answer | Fail:
        self.calls.append(request)
        return self.queue.popleft() if self.queue else self.default

    async def chat(self, request: ChatRequest) -> ChatResponse:
        step = self._next(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(step.delay)
            if isinstance(step, Fail):
                raise step.error
            return ChatResponse(
                id="r1", model=request.model, provider=self.name,
                message=Message(role="assistant", content=step.text), usage=Usage(input_tokens=1, output_tokens=1),
            )
        finally:
            self.in_flight -= 1

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        step = self._next(request)
        await asyncio.sleep(step.delay)
        text = step.text if isinstance(step, Answer) else "partial answer"
        events: list[StreamEvent] = [StartEvent(id="s1", model=request.model, provider=self.name)]
        events += [TextDelta(text=piece) for piece in text.split(" ")]
        events += [UsageEvent(usage=Usage(input_tokens=1, output_tokens=1)), FinishEvent(reason="stop")]
        for i, event in enumerate(events):
            if isinstance(step, Fail) and i == step.after_events:
                raise step.error
            yield event
