"""JSON mode for models without one: a forced tool call whose arguments become the answer text.

A model that can call tools can be made to answer in JSON by offering one tool whose input schema is
the requested schema and forcing the call; its arguments are then the JSON answer. Other gateways
serve ``response_format: json_object`` on Claude this way, so refusing it would break portable
clients. The piece is provider-neutral: :class:`JsonEmulation` rewrites one request and turns the
answer (whole or streamed) back into text, and :class:`JsonModeProvider` wraps any provider with it
(local models without a native JSON mode can reuse it as is).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from ..model import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    FinishEvent,
    NamedToolChoice,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
)
from .base import WrapperProvider

TOOL_NAME = "json_response"
_WRAP_KEY = "value"  # tool input must be an object: other schemas travel wrapped in {"value": ...}


class JsonEmulation:
    """One request's emulation: the rewritten request, and the inverse for its answer."""

    def __init__(self, request: ChatRequest) -> None:
        fmt = request.response_format
        assert fmt is not None
        schema = fmt.json_schema if fmt.type == "json_schema" and fmt.json_schema else {"type": "object"}
        self.wrapped = schema.get("type", "object") != "object"
        if self.wrapped:
            schema = {"type": "object", "properties": {_WRAP_KEY: schema}, "required": [_WRAP_KEY]}
        tool = ToolSpec(
            name=TOOL_NAME,
            description=fmt.description or "Give the answer as this tool's input: a JSON value matching its schema.",
            parameters=schema,
        )
        own_tools = bool(request.tools)
        self.request = request.model_copy(update={
            "response_format": None,
            "tools": [*request.tools, tool],
            # With the caller's own tools the model may still call them; alone, the answer is forced.
            "tool_choice": request.tool_choice if own_tools else NamedToolChoice(name=TOOL_NAME),
            "parallel_tool_calls": request.parallel_tool_calls if own_tools else None,
        })
        self.request.set_wire(None)  # the answer is rewritten below, so never forwarded as bytes

    @staticmethod
    def wanted(request: ChatRequest, caps: Capabilities) -> bool:
        fmt = request.response_format
        if fmt is None or fmt.type == "text":
            return False
        return not (caps.json_schema if fmt.type == "json_schema" else caps.json_object)

    def _text(self, arguments: dict[str, Any]) -> str:
        value = arguments.get(_WRAP_KEY) if self.wrapped else arguments
        return orjson.dumps(value).decode()

    def response(self, response: ChatResponse) -> ChatResponse:
        message = response.message
        answer = next((c for c in message.tool_calls if c.name == TOOL_NAME), None)
        if answer is None:
            return response
        others = [c for c in message.tool_calls if c.name != TOOL_NAME]
        text = self._text(answer.arguments)
        content = [p for p in message.content if not isinstance(p, TextPart)] + [TextPart(text=text)]
        finish = response.finish_reason
        if finish == "tool_calls" and not others:
            finish = "stop"
        new_message = message.model_copy(update={"content": content, "tool_calls": others})
        return response.model_copy(update={"message": new_message, "finish_reason": finish})

    async def events(self, upstream: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """The stream with the answer tool's argument deltas as text deltas (unwrapped at its end)."""
        index: int | None = None
        other_calls = False
        async with contextlib.aclosing(upstream):  # type: ignore[type-var]
            async for event in upstream:
                if isinstance(event, ToolCallStart):
                    if event.name == TOOL_NAME:
                        index = event.index
                        continue
                    other_calls = True
                elif isinstance(event, ToolCallDelta) and event.index == index:
                    if not self.wrapped and event.arguments:
                        yield TextDelta(text=event.arguments)
                    continue
                elif isinstance(event, ToolCallEnd) and event.index == index:
                    if self.wrapped:
                        yield TextDelta(text=self._text(event.tool_call.arguments))
                    continue
                elif isinstance(event, FinishEvent) and event.reason == "tool_calls" and not other_calls:
                    event = event.model_copy(update={"reason": "stop"})
                yield event


async def chat_with(
    call: Callable[[ChatRequest], Awaitable[ChatResponse]], request: ChatRequest, native: Capabilities
) -> ChatResponse:
    """``call(request)``, emulating JSON mode when the model (``native`` capabilities) has none."""
    if not JsonEmulation.wanted(request, native):
        return await call(request)
    emulation = JsonEmulation(request)
    return emulation.response(await call(emulation.request))


async def stream_with(
    open_stream: Callable[[ChatRequest], AsyncIterator[StreamEvent]], request: ChatRequest, native: Capabilities
) -> AsyncIterator[StreamEvent]:
    """The streaming counterpart of :func:`chat_with`; closing it closes the upstream stream."""
    if JsonEmulation.wanted(request, native):
        emulation = JsonEmulation(request)
        source = emulation.events(open_stream(emulation.request))
    else:
        source = open_stream(request)
    async with contextlib.aclosing(source):  # type: ignore[type-var]
        async for event in source:
            yield event


class JsonModeProvider(WrapperProvider):
    """Any provider, with JSON mode served by :class:`JsonEmulation` where the model has none."""

    def native_capabilities(self, model: str) -> Capabilities:
        return self.inner.capabilities(model)

    def capabilities(self, model: str) -> Capabilities:
        return served_capabilities(self.inner.capabilities(model))

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await chat_with(self.inner.chat, request, self.native_capabilities(request.model))

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return stream_with(self.inner.stream, request, self.native_capabilities(request.model))


def served_capabilities(caps: Capabilities) -> Capabilities:
    """What a tool-calling model offers once JSON mode is emulated."""
    if not caps.tools:
        return caps
    return caps.model_copy(update={"json_object": True, "json_schema": True})


__all__ = ["TOOL_NAME", "JsonEmulation", "JsonModeProvider", "chat_with", "served_capabilities", "stream_with"]
