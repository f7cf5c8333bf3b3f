"""The tool loop: call the model, run the tools it asks for, send the results back, repeat.

Provider-neutral by construction: the loop only sees canonical requests, responses and events, so it
behaves the same on OpenAI, Anthropic and Gemini. Tool failures never end a run; they go back to the
model as ``role="tool"`` messages with ``is_error=True`` so it can correct itself.

    agent = Agent(client, "openai/gpt-4o-mini", registry, allowed_tools=["read_file"])
    result = await agent.run("What is in notes.txt?")
    async for event in agent.stream("..."):   # canonical StreamEvents + loop events
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from contextlib import aclosing
from typing import Any

from ..errors import EPError, InvalidRequestError, StreamInterruptedError
from ..model import ChatRequest, ChatResponse, Message, StreamAccumulator, ToolCall, Usage
from ..model.address import parse_address
from .events import (
    AgentEvent,
    RunEnd,
    RunResult,
    StepEnd,
    StepStart,
    StopReason,
    ToolExecutionResult,
    ToolExecutionStart,
)
from .registry import ToolRegistry, is_allowed, result_text, to_jsonable

MessagesIn = str | Sequence[Message | dict[str, Any]]


class Agent:
    """Runs a model with tools until it answers without calling one, or until ``max_steps`` model calls.

    ``backend`` is a ``Provider`` (then ``model`` is the provider's own model name) or a ``Client``
    (then ``model`` is an address like ``openai/gpt-4o``). ``allowed_tools`` (exact names or fnmatch
    patterns) is an allow-list: only those tools are offered, and a call to any other is refused.
    With ``model="persona:NAME"`` on a configured ``Client`` the persona's own ``tools`` list applies
    too (read from the client's current configuration at each run), so the loop offers only what the
    router will accept instead of failing on its first call. ``tool_timeout`` bounds each call
    (default: the tool's own, then the registry's).
    ``params`` are extra ``ChatRequest`` fields (temperature, max_tokens, metadata, …).
    """

    def __init__(
        self,
        backend: Any,
        model: str,
        registry: ToolRegistry | None = None,
        *,
        allowed_tools: Collection[str] | None = None,
        max_steps: int = 10,
        tool_timeout: float | None = None,
        stream: bool = True,
        max_result_chars: int = 100_000,
        system: str | None = None,
        **params: Any,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.backend = backend
        self.registry = registry or ToolRegistry()
        self.allowed_tools = allowed_tools
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.use_stream = stream
        self.max_result_chars = max_result_chars
        self.system = system
        # Validate the parameters once, up front, rather than on the first model call.
        self._template = ChatRequest.model_validate({"model": model, "messages": [], **params})

    # -- public API -----------------------------------------------------------------------------
    async def run(self, messages: MessagesIn) -> RunResult:
        """Run to the end and return the outcome (the events are consumed internally)."""
        result: RunResult | None = None
        async for event in self.stream(messages):
            if isinstance(event, RunEnd):
                result = event.result
        assert result is not None
        return result

    async def stream(self, messages: MessagesIn) -> AsyncIterator[AgentEvent]:
        """Yield every step as events; closing the iterator cancels the model call and running tools.

        With tracing on, the run is an ``invoke_agent`` span, each step a child span and each tool call
        an ``execute_tool`` span under its step (the model calls' own spans come from the gateway).
        """
        from .. import tracing

        tracer = tracing.tracer()
        run_span = None if tracer is None else tracer.start_span(
            f"invoke_agent {self._template.model}",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": self._template.model})
        history = self._initial_messages(messages)
        allowed = self._allowed()
        specs = self.registry.specs(allowed)
        usage = Usage()
        response: ChatResponse | None = None
        stop: StopReason = "max_steps"
        step = 0
        step_span: Any = None
        try:
            for step in range(1, self.max_steps + 1):
                if run_span is not None:
                    step_span = tracer.start_span(f"step {step}", context=tracing.parent(run_span),
                                                  attributes={"ep.step": step})
                async with aclosing(self._one_step(step, history, specs, allowed, step_span)) as events:
                    async for event in events:
                        if isinstance(event, _Outcome):
                            response, stop = event.response, event.stop
                            usage = usage + response.usage
                        else:
                            yield event
                if step_span is not None:
                    step_span.end()
                    step_span = None
                if stop == "final_answer":
                    break
        finally:
            for span in (step_span, run_span):
                if span is not None:
                    span.end()
        yield RunEnd(
            result=RunResult(
                text=response.message.text if (response and stop == "final_answer") else "",
                stop_reason=stop,
                steps=step,
                usage=usage,
                messages=history,
                response=response,
            )
        )

    async def _one_step(
        self, step: int, history: list[Message], specs: Any, allowed: Collection[str] | None, span: Any
    ) -> AsyncGenerator[Any, None]:
        """One model turn and the tools it called; ends with an ``_Outcome`` (not shown to callers)."""
        from .. import tracing

        stop: StopReason = "max_steps"
        yield StepStart(step=step)
        request = self._template.model_copy(update={"messages": list(history), "tools": specs})
        if self.use_stream:
            acc = StreamAccumulator()
            async with aclosing(self._model_stream(request)) as events:
                async for event in events:
                    acc.add(event)
                    yield event
            if acc.error is not None:
                raise StreamInterruptedError(acc.error.message)
            response = acc.response()
        else:
            response = await self._model_chat(request)
        history.append(response.message)
        yield StepEnd(step=step, response=response)
        calls = response.message.tool_calls
        if not calls:
            stop = "final_answer"
        else:
            context = tracing.parent(span) if span is not None else None
            async with aclosing(self._execute_all(step, calls, history, allowed, context)) as executions:
                async for event in executions:
                    yield event
        yield _Outcome(response, stop)

    def _allowed(self) -> Collection[str] | None:
        """The caller's allow-list narrowed by the persona's (tool names; None when neither limits)."""
        persona_tools = persona_allow_list(self.backend, self._template.model)
        if persona_tools is None:
            return self.allowed_tools
        return [
            tool.name for tool in self.registry.tools(self.allowed_tools) if is_allowed(tool.name, persona_tools)
        ]

    # -- model calls ----------------------------------------------------------------------------
    def _model_stream(self, request: ChatRequest) -> Any:
        if hasattr(self.backend, "send_stream"):
            return self.backend.send_stream(request)
        return self.backend.stream(request)

    async def _model_chat(self, request: ChatRequest) -> ChatResponse:
        if hasattr(self.backend, "send"):
            return await self.backend.send(request)
        return await self.backend.chat(request)

    def _initial_messages(self, messages: MessagesIn) -> list[Message]:
        if isinstance(messages, str):
            messages = [Message(role="user", content=messages)]
        history = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
        if self.system and not any(m.role in ("system", "developer") for m in history):
            history.insert(0, Message(role="system", content=self.system))
        return history

    # -- tool execution -------------------------------------------------------------------------
    async def _execute_all(
        self, step: int, calls: list[ToolCall], history: list[Message], allowed: Collection[str] | None,
        trace_context: Any = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run all calls of one step concurrently; report each as it finishes, append in call order."""
        tasks = [asyncio.create_task(self._execute(step, call, allowed, trace_context)) for call in calls]
        try:
            for call in calls:
                yield ToolExecutionStart(step=step, call_id=call.id, name=call.name, arguments=call.arguments)
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()
        for call, task in zip(calls, tasks, strict=True):
            result = task.result()
            history.append(
                Message(
                    role="tool",
                    tool_call_id=call.id,
                    name=call.name,
                    content=result.content,
                    is_error=result.is_error,
                )
            )

    async def _execute(
        self, step: int, call: ToolCall, allowed: Collection[str] | None, trace_context: Any = None
    ) -> ToolExecutionResult:
        if trace_context is None:
            return await self._run_tool(step, call, allowed)
        from .. import tracing

        span = tracing.tracer().start_span(
            f"execute_tool {call.name}", context=trace_context, kind=tracing.kind("INTERNAL"),
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.name,
                        "gen_ai.tool.call.id": call.id or "", "ep.step": step})
        try:
            result = await self._run_tool(step, call, allowed)
            if result.is_error:
                tracing.mark_error(span, result.error_type or "tool_error")
            return result
        finally:
            span.end()

    async def _run_tool(self, step: int, call: ToolCall, allowed: Collection[str] | None) -> ToolExecutionResult:
        started = time.perf_counter()
        value: Any = None
        error: EPError | None = None
        try:
            if call.raw_arguments is not None and not call.arguments:
                raise InvalidRequestError(
                    f"arguments for tool '{call.name}' are not a JSON object: {call.raw_arguments[:200]!r}",
                    code="invalid_tool_arguments",
                )
            value = await self.registry.invoke(
                call.name, call.arguments, allowed=allowed, timeout=self.tool_timeout
            )
        except EPError as exc:
            error = exc
        content = f"Error ({error.type}): {error.message}" if error is not None else result_text(value)
        if len(content) > self.max_result_chars:
            content = content[: self.max_result_chars] + f"\n[truncated: {len(content)} characters in total]"
        return ToolExecutionResult(
            step=step,
            call_id=call.id,
            name=call.name,
            is_error=error is not None,
            content=content,
            result=None if error is not None else to_jsonable(value),
            error_type=error.type if error is not None else None,
            duration_ms=(time.perf_counter() - started) * 1000,
        )


async def run(
    backend: Any,
    model: str,
    messages: MessagesIn,
    registry: ToolRegistry | None = None,
    **options: Any,
) -> RunResult:
    """One-shot helper: ``await run(provider, "gpt-4o-mini", "question", registry, max_steps=5)``."""
    return await Agent(backend, model, registry, **options).run(messages)


def persona_allow_list(backend: Any, model: str) -> Collection[str] | None:
    """The ``tools`` list of the persona ``model`` names (``persona:NAME``) in ``backend``'s configuration.

    None when the model is not a persona, the backend has no configuration (a bare provider) or the
    persona sets no list; an unknown persona is left for the router to refuse.
    """
    name = parse_address(model).persona
    if name is None:
        return None
    config = getattr(getattr(backend, "router", None), "config", None)
    persona = (getattr(config, "personas", None) or {}).get(name)
    return getattr(persona, "tools", None)


class _Outcome:
    """A step's model answer and whether it ended the run (internal to :class:`ToolLoop`'s generator)."""

    __slots__ = ("response", "stop")

    def __init__(self, response: ChatResponse, stop: StopReason) -> None:
        self.response = response
        self.stop = stop
