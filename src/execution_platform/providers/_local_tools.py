"""Tool calling for a local model that has none: the answer is constrained to a tool-call JSON schema.

Small chat models (the shipped SmolLM2 among them) never emit tool calls by themselves, and GGUF chat
templates disagree on how tools are written. So the local provider does not send ``tools`` at all:
it describes them in a system message and sends a ``json_schema`` response format, which llama.cpp
compiles to a grammar, so every token the model samples keeps the output a valid
``{"name": <one of the tools>, "arguments": <that tool's parameters>}``. With ``tool_choice: auto``
the schema also admits ``{"answer": "..."}``, a plain reply. The JSON is then turned back into a
canonical tool call (or text), so callers see exactly what a cloud model would send.

Earlier turns are rewritten the same way: an assistant tool call becomes its JSON text and a tool
result becomes a user turn quoting it, which every chat template can render.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..model import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    NamedToolChoice,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
)


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What was asked of the engine, to read its answer back."""

    tools: tuple[str, ...]
    allow_answer: bool
    plain: bool = False  # the engine answers in text: pass it through


def plan(request: ChatRequest) -> tuple[ChatRequest, ToolPlan | None]:
    """The request the engine sees (no tools, a grammar instead) and how to decode its answer."""
    history = _flatten_history(request.messages) if _has_tool_turns(request.messages) else request.messages
    choice = request.tool_choice
    if not request.tools or choice == "none":
        if history is request.messages:
            return request, None
        return request.model_copy(update={"messages": history, "tools": [], "tool_choice": None}), None
    tools = request.tools
    if isinstance(choice, NamedToolChoice):
        tools = [t for t in tools if t.name == choice.name] or tools
    allow_answer = choice in (None, "auto")
    if allow_answer:
        # Small models call the same tool again and again once they have its result; with "auto" the
        # tools already called since the user last spoke are no longer offered (their results are in
        # the context), so the model moves on to another tool or to its answer.
        called = _called_this_turn(request.messages)
        tools = [t for t in tools if t.name not in called]
        if not tools:
            return _answer_only(request, history)
    options: list[dict[str, Any]] = [_call_schema(t) for t in tools]
    if allow_answer:
        options.append({"type": "object", "properties": {"answer": {"type": "string"}},
                        "required": ["answer"], "additionalProperties": False})
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    guide = Message(role="system", content=_instructions(tools, allow_answer))
    messages = [guide, *history] if not history or history[0].role != "system" else [
        Message(role="system", content=history[0].text + "\n\n" + guide.text), *history[1:]]
    engine_request = request.model_copy(update={
        "messages": messages, "tools": [], "tool_choice": None, "parallel_tool_calls": None,
        "response_format": ResponseFormat.model_validate(
            {"type": "json_schema", "name": "tool_call", "schema": schema, "strict": True}),
    })
    return engine_request, ToolPlan(tools=tuple(t.name for t in tools), allow_answer=allow_answer)


def _called_this_turn(messages: list[Message]) -> set[str]:
    called: set[str] = set()
    for m in reversed(messages):
        if m.role == "user":
            break
        called.update(c.name for c in m.tool_calls)
    return called


def _answer_only(request: ChatRequest, history: list[Message]) -> tuple[ChatRequest, ToolPlan]:
    """Every offered tool has been used: the model now answers in plain text.

    The turn's tool calls are folded into the user's last message as results ("Tool X returned: …"),
    because a small model shown its own earlier JSON calls just writes another one."""
    messages = list(request.messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        engine_messages = history
    else:
        results = [f"{m.text}" for m in _flatten_history(messages[last_user + 1:]) if m.role == "user"]
        question = messages[last_user].text
        prompt = question + "\n\n" + "\n".join(results) + "\n\nAnswer using these results."
        engine_messages = [*_flatten_history(messages[:last_user]), Message(role="user", content=prompt)]
    engine_request = request.model_copy(update={
        "messages": engine_messages, "tools": [], "tool_choice": None, "parallel_tool_calls": None,
    })
    return engine_request, ToolPlan(tools=(), allow_answer=True, plain=True)


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    params = tool.parameters or {"type": "object", "properties": {}}
    return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": params},
            "required": ["name", "arguments"], "additionalProperties": False}


def _instructions(tools: list[ToolSpec], allow_answer: bool) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        desc = f": {tool.description}" if tool.description else ""
        lines.append(f"- {tool.name}{desc} Arguments (JSON schema): {json.dumps(tool.parameters)}")
    lines.append('To call a tool, reply with JSON: {"name": "<tool>", "arguments": {...}}.')
    if allow_answer:
        lines.append('When a tool result already answers the question, or no tool helps, reply with JSON: '
                     '{"answer": "<your reply>"}.')
    return "\n".join(lines)


def _has_tool_turns(messages: Iterable[Message]) -> bool:
    return any(m.role == "tool" or m.tool_calls for m in messages)


def _flatten_history(messages: list[Message]) -> list[Message]:
    names: dict[str, str] = {}
    out: list[Message] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            calls = []
            for call in m.tool_calls:
                names[call.id] = call.name
                calls.append(json.dumps({"name": call.name, "arguments": call.arguments}))
            text = "\n".join(([m.text] if m.text else []) + calls)
            out.append(Message(role="assistant", content=text))
        elif m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "", "the tool")
            status = "failed" if m.is_error else "returned"
            out.append(Message(role="user", content=f"Tool {name} {status}: {m.text}"))
        else:
            out.append(m)
    return out


def read_answer(text: str, tool_plan: ToolPlan) -> list[ToolCall] | str | None:
    """The engine's JSON as tool calls or a plain answer; None if it is not what was asked (e.g. cut off)."""
    if tool_plan.plain:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    if isinstance(name, str) and name in tool_plan.tools:
        args = data.get("arguments")
        return [ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name,
                         arguments=args if isinstance(args, dict) else {})]
    answer = data.get("answer")
    if tool_plan.allow_answer and isinstance(answer, str):
        return answer
    return None


def decode_response(response: ChatResponse, tool_plan: ToolPlan) -> ChatResponse:
    result = read_answer(response.message.text, tool_plan)
    if result is None:
        return response
    if isinstance(result, str):
        response.message = Message(role="assistant", content=result)
        return response
    response.message = Message(role="assistant", tool_calls=result)
    response.finish_reason = "tool_calls"
    return response


class StreamRewriter:
    """Holds the engine's JSON text back and emits it as tool-call events (or text) when it is complete."""

    def __init__(self, tool_plan: ToolPlan) -> None:
        self.plan = tool_plan
        self.text: list[str] = []

    def feed(self, event: StreamEvent) -> Iterator[StreamEvent]:
        if self.plan.plain:
            yield event
            return
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            return
        if isinstance(event, FinishEvent):
            raw = "".join(self.text)
            result = read_answer(raw, self.plan)
            if result is None:
                if raw:
                    yield TextDelta(text=raw)
                yield event
                return
            if isinstance(result, str):
                if result:
                    yield TextDelta(text=result)
                yield event
                return
            for index, call in enumerate(result):
                yield ToolCallStart(index=index, id=call.id, name=call.name)
                yield ToolCallDelta(index=index, arguments=json.dumps(call.arguments))
                yield ToolCallEnd(index=index, tool_call=call)
            yield FinishEvent(reason="tool_calls", raw_reason=event.raw_reason)
            return
        yield event

