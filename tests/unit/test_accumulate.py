"""Folding canonical stream events back into a response."""

from execution_platform.model import (
    FinishEvent,
    StartEvent,
    StreamAccumulator,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)


def test_text_tool_calls_usage_and_finish() -> None:
    acc = StreamAccumulator()
    events = [
        StartEvent(id="r1", model="m", provider="p"),
        ThinkingDelta(text="let me "),
        ThinkingDelta(text="think"),
        ThinkingDelta(signature="sig"),
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        ToolCallStart(index=0, id="c0", name="a"),
        ToolCallStart(index=1, id="c1", name="b"),
        ToolCallDelta(index=1, arguments='{"y"'),
        ToolCallDelta(index=0, arguments='{"x": 1}'),
        ToolCallDelta(index=1, arguments=": 2}"),
        ToolCallEnd(index=0, tool_call=ToolCall(id="c0", name="a", arguments={"x": 1})),
        UsageEvent(usage=Usage(input_tokens=3, output_tokens=4)),
        FinishEvent(reason="tool_calls"),
    ]
    for ev in events:
        acc.add(ev)
    resp = acc.response()
    assert resp.id == "r1" and resp.provider == "p"
    assert resp.message.text == "Hello"
    assert resp.message.thinking[0].text == "let me think"
    assert resp.message.thinking[0].signature == "sig"
    assert [(c.id, c.name, c.arguments) for c in resp.message.tool_calls] == [
        ("c0", "a", {"x": 1}),
        ("c1", "b", {"y": 2}),
    ]
    assert resp.usage.output_tokens == 4
    assert resp.finish_reason == "tool_calls"


def test_unparseable_arguments_are_kept_raw() -> None:
    acc = StreamAccumulator()
    acc.add(ToolCallStart(index=0, id="c", name="f"))
    acc.add(ToolCallDelta(index=0, arguments="{not json"))
    call = acc.response().message.tool_calls[0]
    assert call.raw_arguments == "{not json"
    assert call.arguments == {}
