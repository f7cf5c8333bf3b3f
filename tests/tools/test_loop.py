"""The tool loop against a scripted in-process provider: ordering, parallelism, errors, limits."""

from __future__ import annotations

import asyncio

import pytest

from execution_platform.model import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    Usage,
)
from execution_platform.tools import (
    Agent,
    RunEnd,
    StepEnd,
    StepStart,
    ToolExecutionResult,
    ToolExecutionStart,
    ToolRegistry,
    run,
)
from tests.fakes.scripted import ScriptedProvider


def answer(text: str) -> ChatResponse:
    return ChatResponse(
        id="r", model="m", message=Message(role="assistant", content=text), usage=Usage(input_tokens=5, output_tokens=2)
    )


def calls(*specs: tuple[str, str, dict[str, object]], raw: str | None = None) -> ChatResponse:
    tool_calls = [ToolCall(id=i, name=n, arguments=a) for i, n, a in specs]
    if raw is not None:
        tool_calls = [ToolCall(id=specs[0][0], name=specs[0][1], raw_arguments=raw)]
    return ChatResponse(
        id="r",
        model="m",
        message=Message(role="assistant", tool_calls=tool_calls),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=5, output_tokens=2),
    )


TEMPERATURES = {"Oslo": 4, "Paris": 15}


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry(default_timeout=5)
    barrier = asyncio.Barrier(2)

    @reg.register
    async def temperature(city: str) -> int:
        """Current temperature in Celsius."""
        # Both parallel calls must be in flight at once, or neither passes the barrier.
        async with asyncio.timeout(2):
            await barrier.wait()
        return TEMPERATURES[city]

    @reg.register
    def difference(a: int, b: int) -> int:
        """a minus b."""
        return a - b

    @reg.register
    def explode() -> str:
        raise RuntimeError("sensor offline")

    return reg


def two_step_script() -> ScriptedProvider:
    return ScriptedProvider().then(
        calls(("c1", "temperature", {"city": "Paris"}), ("c2", "temperature", {"city": "Oslo"})),
        calls(("c3", "difference", {"a": 15, "b": 4})),
        answer("Paris is 11 degrees warmer than Oslo."),
    )


def tool_messages(request: ChatRequest) -> list[Message]:
    return [m for m in request.messages if m.role == "tool"]


@pytest.mark.parametrize("stream", [True, False])
async def test_two_step_task_with_parallel_calls(registry: ToolRegistry, stream: bool) -> None:
    provider = two_step_script()
    result = await run(provider, "m", "How much warmer is Paris than Oslo?", registry, stream=stream)

    assert result.stop_reason == "final_answer"
    assert result.text == "Paris is 11 degrees warmer than Oslo."
    assert result.steps == 3
    assert result.usage.input_tokens == 15
    # Step 2 saw both parallel results, in call order, tied to their ids.
    second = tool_messages(provider.calls[1])
    assert [(m.tool_call_id, m.name, m.text, m.is_error) for m in second] == [
        ("c1", "temperature", "15", False),
        ("c2", "temperature", "4", False),
    ]
    assert provider.calls[1].messages[1].tool_calls[0].id == "c1"  # the assistant turn went back too
    third = tool_messages(provider.calls[2])
    assert (third[-1].tool_call_id, third[-1].text) == ("c3", "11")
    assert {t.name for t in provider.calls[0].tools} == {"temperature", "difference", "explode"}


async def test_failing_tool_error_goes_back_to_the_model(registry: ToolRegistry) -> None:
    provider = ScriptedProvider().then(
        calls(("e1", "explode", {}), ("e2", "difference", {"a": 1})),
        answer("The sensor is offline."),
    )
    result = await Agent(provider, "m", registry).run("temperature?")
    assert result.text == "The sensor is offline."
    results = tool_messages(provider.calls[1])
    assert results[0].is_error and results[0].tool_call_id == "e1"
    assert "RuntimeError: sensor offline" in results[0].text
    assert results[1].is_error and "b: Field required" in results[1].text


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (calls(("x", "no_such_tool", {})), "unknown tool 'no_such_tool'"),
        (calls(("x", "difference", {}), raw="{not json"), "not a JSON object"),
        (calls(("x", "explode", {})), "not allowed"),
    ],
    ids=["unknown", "malformed-arguments", "not-on-allow-list"],
)
async def test_bad_calls_become_error_results(registry: ToolRegistry, response: ChatResponse, fragment: str) -> None:
    provider = ScriptedProvider().then(response, answer("ok"))
    result = await Agent(provider, "m", registry, allowed_tools=["difference", "temp*"]).run("go")
    assert result.text == "ok"
    [error] = tool_messages(provider.calls[1])
    assert error.is_error and fragment in error.text


async def test_allow_list_limits_the_offered_tools(registry: ToolRegistry) -> None:
    provider = ScriptedProvider().then(answer("hi"))
    await Agent(provider, "m", registry, allowed_tools=["difference"]).run("go")
    assert [t.name for t in provider.calls[0].tools] == ["difference"]


async def test_max_steps_stops_a_model_that_never_answers(registry: ToolRegistry) -> None:
    provider = ScriptedProvider().then(*[calls((f"d{i}", "difference", {"a": i, "b": 0})) for i in range(3)])
    result = await Agent(provider, "m", registry, max_steps=2).run("loop forever")
    assert result.stop_reason == "max_steps"
    assert result.steps == 2
    assert result.text == ""
    assert len(provider.calls) == 2
    assert result.messages[-1].role == "tool" and result.messages[-1].tool_call_id == "d1"


async def test_each_call_has_a_timeout(registry: ToolRegistry) -> None:
    provider = ScriptedProvider().then(calls(("t1", "temperature", {"city": "Oslo"})), answer("gave up"))
    result = await Agent(provider, "m", registry, tool_timeout=0.2).run("go")
    assert result.text == "gave up"
    [error] = tool_messages(provider.calls[1])
    assert error.is_error and "timed out after 0.2s" in error.text


async def test_stream_reports_every_step_in_order(registry: ToolRegistry) -> None:
    events = [e async for e in Agent(two_step_script(), "m", registry).stream("go")]
    kinds = [e.type for e in events]
    assert kinds[0] == "step_start" and kinds[-1] == "run_end"
    first_step = kinds[: kinds.index("step_end") + 1]
    assert first_step[:2] == ["step_start", "start"]
    assert first_step[-3:] == ["usage", "finish", "step_end"]
    assert kinds.count("tool_call_end") == 3
    starts = [e for e in events if isinstance(e, ToolExecutionStart)]
    results = [e for e in events if isinstance(e, ToolExecutionResult)]
    assert [s.call_id for s in starts] == ["c1", "c2", "c3"]
    assert sorted(r.call_id for r in results) == ["c1", "c2", "c3"]
    assert {r.call_id: r.result for r in results} == {"c1": 15, "c2": 4, "c3": 11}
    # Tool executions of a step come after its StepEnd and before the next StepStart.
    step2 = kinds.index("step_start", 1)
    first_results = [i for i, e in enumerate(events) if isinstance(e, ToolExecutionResult) and e.step == 1]
    assert len(first_results) == 2
    assert kinds.index("step_end") < kinds.index("tool_execution_start") < min(first_results)
    assert max(first_results) < step2
    assert [e.step for e in events if isinstance(e, StepStart)] == [1, 2, 3]
    final = [e for e in events if isinstance(e, StepEnd)][-1]
    assert final.response.message.text.startswith("Paris")
    assert isinstance(events[-1], RunEnd) and events[-1].result.steps == 3


async def test_closing_the_stream_cancels_running_tools() -> None:
    reg = ToolRegistry()
    state = {"started": False, "cancelled": False}

    @reg.register
    async def forever() -> None:
        state["started"] = True
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    agen = Agent(ScriptedProvider().then(calls(("f", "forever", {}))), "m", reg).stream("go")
    async for event in agen:
        if isinstance(event, ToolExecutionStart):
            break
    await asyncio.sleep(0.05)
    await agen.aclose()
    await asyncio.sleep(0)
    assert state == {"started": True, "cancelled": True}


async def test_system_prompt_is_prepended_once(registry: ToolRegistry) -> None:
    provider = ScriptedProvider().then(answer("ok"))
    await Agent(provider, "m", registry, system="Be brief.", temperature=0.1).run("hi")
    request = provider.calls[0]
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.temperature == 0.1


def test_bad_parameters_fail_up_front(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError):
        Agent(ScriptedProvider(), "m", registry, temperature="hot")


async def test_with_tracing_on_the_run_its_steps_and_tool_calls_are_spans(
    registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from execution_platform import tracing
    from tests.otlp_receiver import Receiver

    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    tracing.reset()
    try:
        result = await run(two_step_script(), "m", "How much warmer is Paris than Oslo?", registry=registry)
        assert result.stop_reason == "final_answer"
        tracing.flush()
        spans = {s["name"]: s for s in receiver.spans}
        agent = spans["invoke_agent m"]
        steps = [spans[f"step {i}"] for i in (1, 2, 3)]
        assert {s["parent"] for s in steps} == {agent["span_id"]}
        tools = [s for s in receiver.spans if s["name"].startswith("execute_tool ")]
        assert sorted((s["attrs"]["gen_ai.tool.name"], s["attrs"]["gen_ai.tool.call.id"]) for s in tools) == [
            ("difference", "c3"), ("temperature", "c1"), ("temperature", "c2")]
        by_call = {s["attrs"]["gen_ai.tool.call.id"]: s for s in tools}
        assert by_call["c1"]["parent"] == by_call["c2"]["parent"] == steps[0]["span_id"]
        assert by_call["c3"]["parent"] == steps[1]["span_id"]
        assert all(s["attrs"]["gen_ai.operation.name"] == "execute_tool" for s in tools)
    finally:
        tracing.reset()
        receiver.close()
