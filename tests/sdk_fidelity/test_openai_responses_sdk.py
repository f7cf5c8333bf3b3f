"""The official ``openai`` SDK's Responses API must parse everything FakeOpenAI's ``/v1/responses`` sends.

Bodies and stream events are validated against the SDK's own pydantic types, with no invented fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from tests.fakes.openai import FakeOpenAI
from tests.fakes.script import Fault, Reply, ToolCallSpec

from .test_openai_sdk import no_invented_fields

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}},
        "strict": False}


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=fake_openai.api_key, base_url=fake_openai.base_url, max_retries=0,
                       timeout=5) as sdk:
        yield sdk


def test_text_with_cached_tokens(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text="Hi there.", input_tokens=20, output_tokens=3, cached_input_tokens=8,
                              reasoning_tokens=1))
    raw = client.responses.with_raw_response.create(model="gpt-4.1", input="Hello", instructions="Be brief.")
    response = Response.model_validate(json.loads(raw.text))
    no_invented_fields(response)
    assert response.output_text == "Hi there." and response.status == "completed"
    assert response.usage is not None and response.usage.total_tokens == 23
    assert response.usage.input_tokens_details.cached_tokens == 8
    assert response.usage.output_tokens_details.reasoning_tokens == 1
    assert fake_openai.requests[-1].path == "/v1/responses"


@pytest.mark.parametrize("count", [1, 2], ids=["single", "parallel"])
def test_function_calls(client: openai.OpenAI, fake_openai: FakeOpenAI, count: int) -> None:
    calls = [ToolCallSpec("get_weather", {"city": "Oslo"}), ToolCallSpec("get_time", {"tz": "UTC"})][:count]
    fake_openai.enqueue(Reply(text=None, tool_calls=calls))
    response = client.responses.create(model="gpt-4.1", input="weather?", tools=[TOOL])
    no_invented_fields(response)
    got = [(i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"]
    assert got == [(c.name, c.arguments) for c in calls]


class Weather(BaseModel):
    city: str
    celsius: int


def test_parse_json_schema(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(text='{"city": "Oslo", "celsius": -3}'))
    parsed = client.responses.parse(model="gpt-4.1", input="weather?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", celsius=-3)


def test_stream_events_are_sdk_types(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    reply = Reply(text="one two three", chunks=3, tool_calls=[ToolCallSpec("get_weather", {"a": 1})])
    fake_openai.enqueue(reply, reply)
    adapter: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
    events = list(client.responses.create(model="gpt-4.1", input="count", tools=[TOOL], stream=True))
    for event in events:
        no_invented_fields(adapter.validate_python(event.model_dump(exclude_unset=True)))
    with client.responses.stream(model="gpt-4.1", input="count", tools=[TOOL]) as stream:
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert final.output_text == "one two three"
    assert [i.type for i in final.output] == ["message", "function_call"]


def test_status_error(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("status", status=429, error_type="rate_limit_exceeded", retry_after=1))
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="gpt-4.1", input="x")


def test_in_stream_error(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Fault("stream_error", after_chunks=3, message="boom", then=Reply(text="abc")))
    events = list(client.responses.create(model="gpt-4.1", input="x", stream=True))
    assert events[-1].type == "error" and events[-1].message == "boom"
    assert "response.completed" not in [e.type for e in events]
