"""Tool calling on the local model is a grammar plus a rewrite; these check the rewrite both ways."""

from __future__ import annotations

import json

from execution_platform.model import ChatRequest, ChatResponse, FinishEvent, Message, TextDelta, ToolCall
from execution_platform.providers import _local_tools

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
CLOCK = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}


def request(**kw: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "default", "messages": [{"role": "user", "content": "hi"}], **kw})


def test_required_offers_only_calls_and_auto_also_an_answer() -> None:
    engine, plan = _local_tools.plan(request(tools=[WEATHER, CLOCK], tool_choice="required"))
    assert plan is not None and not plan.allow_answer
    assert engine.tools == [] and engine.response_format is not None
    schema = engine.response_format.json_schema
    assert [o["properties"]["name"]["const"] for o in schema["anyOf"]] == ["get_weather", "get_time"]
    _, auto = _local_tools.plan(request(tools=[WEATHER], tool_choice="auto"))
    assert auto is not None and auto.allow_answer


def test_named_choice_constrains_to_that_tool() -> None:
    engine, _ = _local_tools.plan(request(tools=[WEATHER, CLOCK], tool_choice={"type": "tool", "name": "get_time"}))
    assert engine.response_format.json_schema["properties"]["name"]["const"] == "get_time"


def test_engine_json_becomes_a_tool_call_or_text() -> None:
    _, plan = _local_tools.plan(request(tools=[WEATHER]))
    assert plan is not None
    response = ChatResponse(id="x", model="m", message=Message(
        role="assistant", content=json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})))
    decoded = _local_tools.decode_response(response, plan)
    assert decoded.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in decoded.message.tool_calls] == [("get_weather", {"city": "Oslo"})]
    rewriter = _local_tools.StreamRewriter(plan)
    events = [out for ev in (TextDelta(text='{"answer": '), TextDelta(text='"sunny"}'), FinishEvent(reason="stop"))
              for out in rewriter.feed(ev)]
    assert [(e.type, getattr(e, "text", None)) for e in events] == [("text_delta", "sunny"), ("finish", None)]


def test_auto_does_not_offer_a_tool_again_after_its_result() -> None:
    history = [
        Message(role="user", content="weather in Oslo?"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"})]),
        Message(role="tool", tool_call_id="c1", content="sunny"),
    ]
    engine, plan = _local_tools.plan(ChatRequest(model="m", messages=history,
                                                 tools=[WEATHER, CLOCK], tool_choice="auto"))
    assert plan is not None and plan.tools == ("get_time",)  # get_weather was called this turn
    engine, plan = _local_tools.plan(ChatRequest(model="m", messages=history, tools=[WEATHER], tool_choice="auto"))
    assert plan is not None and plan.plain and engine.response_format is None
    assert [m.role for m in engine.messages] == ["user"]
    assert "get_weather returned: sunny" in engine.messages[-1].text
