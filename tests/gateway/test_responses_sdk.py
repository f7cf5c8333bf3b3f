"""The official ``openai`` SDK's Responses API (``client.responses``) against the gateway's
``/v1/responses``, served by each upstream: OpenAI through chat completions and through its own
Responses API (``api: responses``), Anthropic and Gemini."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pydantic
import pytest

from execution_platform.config.file import parse_config
from tests.fakes import Fault, Reply, ToolCallSpec
from tests.fakes.base import FakeUpstream
from tests.sdk_fidelity.test_openai_sdk import no_invented_fields

from .conftest import MASTER
from .server import GatewayServer, start_gateway

MODELS = {"openai": "openai/gpt-4o", "openai-responses": "openai/gpt-4.1", "anthropic": "anthropic/claude-sonnet-4-5",
          "gemini": "gemini/gemini-2.5-flash"}
UPSTREAMS = list(MODELS)
# gpt-4.1 is called through OpenAI's Responses API, every other OpenAI model through chat completions.
CONFIG = """
providers:
  openai:
    model_api:
      gpt-4.1: responses
"""
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False},
           "strict": True}


@pytest.fixture(scope="module")
def gateway_module(fake_servers: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[GatewayServer]:
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, {"workspace_root": tmp_path_factory.mktemp("ws")}, config=parse_config(CONFIG))
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_module: GatewayServer, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream,
            fake_gemini: FakeUpstream) -> GatewayServer:
    """This module's gateway, with every fake reset for the test."""
    return gateway_module


@pytest.fixture
def fakes(fake_servers: dict[str, FakeUpstream]) -> dict[str, FakeUpstream]:
    return {**fake_servers, "openai-responses": fake_servers["openai"]}


def sdk(gateway: GatewayServer, key: str = "gateway-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=10)


def upstream_text(fake) -> str:
    """Everything the upstream was sent on its last model call, as one string to search in."""
    return json.dumps(fake.requests[-1].body)


def expect_path(fake, upstream: str) -> None:
    path = fake.requests[-1].path
    if upstream == "openai-responses":
        assert path == "/v1/responses"
    elif upstream == "openai":
        assert path == "/v1/chat/completions"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_plain(gateway: GatewayServer, fakes, upstream: str) -> None:
    fake = fakes[upstream]
    fake.enqueue(Reply(text="Bonjour.", input_tokens=20, output_tokens=4))
    raw = sdk(gateway).responses.with_raw_response.create(model=MODELS[upstream], input="hi",
                                                          instructions="Answer in French.")
    response = raw.parse()
    assert response.output_text == "Bonjour."
    assert response.status == "completed" and response.object == "response" and response.id.startswith("resp_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 4)
    assert response.instructions == "Answer in French."
    assert raw.headers["x-ep-provider"] == upstream.partition("-")[0]
    assert "Answer in French." in upstream_text(fake)
    expect_path(fake, upstream)


@pytest.mark.parametrize("upstream", ["openai", "openai-responses"])
def test_cached_tokens_reported(gateway: GatewayServer, fake_openai, upstream: str) -> None:
    fake_openai.enqueue(Reply(text="ok", input_tokens=2000, cached_input_tokens=1536, reasoning_tokens=3))
    usage = sdk(gateway).responses.create(model=MODELS[upstream], input="hi").usage
    assert usage is not None
    assert usage.input_tokens_details.cached_tokens == 1536
    assert usage.output_tokens_details.reasoning_tokens == 3


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_streamed(gateway: GatewayServer, fakes, upstream: str) -> None:
    fakes[upstream].enqueue(Reply(text="one two three four", chunks=4))
    events = list(sdk(gateway).responses.create(model=MODELS[upstream], input="count", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.delta",
                 "response.output_text.done", "response.content_part.done", "response.output_item.done"):
        assert kind in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for event in events:
        no_invented_fields(event)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "one two three four"
    final = events[-1].response
    assert final.output_text == text and final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("streaming", [False, True])
def test_function_tool_round_trip(gateway: GatewayServer, fakes, upstream: str, streaming: bool) -> None:
    fake = fakes[upstream]
    fake.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
                 Reply(text="It is sunny in Paris."))
    client = sdk(gateway)
    question = [{"role": "user", "content": "Weather in Paris?"}]
    if streaming:
        with client.responses.stream(model=MODELS[upstream], input=question, tools=[WEATHER]) as stream:
            kinds = [event.type for event in stream]
            first = stream.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        first = client.responses.create(model=MODELS[upstream], input=question, tools=[WEATHER])
    no_invented_fields(first)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    follow_up = [*question, *[item.model_dump(exclude_none=True) for item in first.output],
                 {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 24C"}]
    second = client.responses.create(model=MODELS[upstream], input=follow_up, tools=[WEATHER], store=False)
    assert second.output_text == "It is sunny in Paris."
    sent = upstream_text(fake)
    assert "sunny, 24C" in sent and "get_weather" in sent
    expect_path(fake, upstream)


class City(pydantic.BaseModel):
    name: str
    country: str


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_json_schema_output(gateway: GatewayServer, fakes, upstream: str) -> None:
    fake = fakes[upstream]
    fake.enqueue(Reply(text='{"name": "Paris", "country": "France"}'))
    parsed = sdk(gateway).responses.parse(model=MODELS[upstream], input="A capital?", text_format=City)
    assert parsed.output_parsed == City(name="Paris", country="France")
    assert parsed.text is not None and parsed.text.format.type == "json_schema"
    assert '"country"' in upstream_text(fake)  # the schema reached the upstream


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_previous_response_id_get_and_delete(gateway: GatewayServer, fakes, upstream: str) -> None:
    fake = fakes[upstream]
    fake.enqueue(Reply(text="Nice to meet you, Ana."), Reply(text="Your name is Ana."))
    client = sdk(gateway)
    first = client.responses.create(model=MODELS[upstream], input="My name is Ana.", metadata={"run": "r1"})
    assert first.metadata == {"run": "r1"}
    second = client.responses.create(model=MODELS[upstream], input="What is my name?",
                                     previous_response_id=first.id)
    assert second.output_text == "Your name is Ana." and second.previous_response_id == first.id
    sent = upstream_text(fake)
    assert "My name is Ana." in sent and "Nice to meet you, Ana." in sent and "What is my name?" in sent
    stored = client.responses.retrieve(first.id)
    assert stored.id == first.id and stored.output_text == "Nice to meet you, Ana."
    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_streamed_response_is_stored(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text="streamed answer"), Reply(text="second"))
    client = sdk(gateway)
    events = list(client.responses.create(model=MODELS["anthropic"], input="first", stream=True))
    rid = events[-1].response.id
    assert client.responses.retrieve(rid).output_text == "streamed answer"
    client.responses.create(model=MODELS["anthropic"], input="again", previous_response_id=rid)
    assert "streamed answer" in upstream_text(fake_anthropic)


def test_store_false_is_not_kept(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Reply(text="ephemeral"))
    client = sdk(gateway)
    response = client.responses.create(model=MODELS["openai"], input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODELS["openai"], input="more", previous_response_id=response.id)
    assert err.value.body["param"] == "previous_response_id"


def test_another_key_cannot_see_a_stored_response(make_gateway, fake_openai) -> None:
    gw = make_gateway({"master_key": MASTER})
    keys = [httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                       json={"name": name}).json()["key"] for name in ("a", "b")]
    fake_openai.enqueue(Reply(text="for a only"))
    mine = sdk(gw, keys[0]).responses.create(model=MODELS["openai"], input="secret")
    assert sdk(gw, keys[0]).responses.retrieve(mine.id).output_text == "for a only"
    with pytest.raises(openai.NotFoundError) as err:
        sdk(gw, keys[1]).responses.retrieve(mine.id)
    assert err.value.body["message"] == f"Response with id '{mine.id}' not found."
    with pytest.raises(openai.NotFoundError):
        sdk(gw, keys[1]).responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError):
        sdk(gw, keys[1]).responses.create(model=MODELS["openai"], input="x", previous_response_id=mine.id)
    assert sdk(gw, keys[0]).responses.retrieve(mine.id).id == mine.id  # still there for its owner


def test_errors_in_openai_shape(gateway: GatewayServer) -> None:
    client = sdk(gateway)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nosuch/model", input="x")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODELS["openai"], input=[{"type": "item_reference", "id": "x"}])
    assert err.value.body["param"] == "input[0].type"
    raw = httpx.post(gateway.url + "/v1/responses", json={"model": MODELS["openai"], "input": 5})
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}


def test_hosted_tools_are_dropped_and_named(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text="no search here"))
    raw = sdk(gateway).responses.with_raw_response.create(
        model=MODELS["anthropic"], input="hi", tools=[WEATHER, {"type": "web_search"}])
    assert raw.parse().output_text == "no search here"
    assert raw.headers["x-ep-dropped-params"] == "tools[1]"
    assert [t["name"] for t in fake_anthropic.requests[-1].body["tools"]] == ["get_weather"]


def test_anthropic_thinking_travels_as_reasoning_items_and_comes_back(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Reply(text=None, thinking="Let me check.", thinking_signature="sig-123",
                                 tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"})]),
                           Reply(text="Cold."))
    client = sdk(gateway)
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.responses.create(model=MODELS["anthropic"], input=question, tools=[WEATHER],
                                    reasoning={"effort": "low"})
    reasoning = [item for item in first.output if item.type == "reasoning"]
    assert reasoning and reasoning[0].encrypted_content == "sig-123"
    assert reasoning[0].summary[0].text == "Let me check."
    call = next(item for item in first.output if item.type == "function_call")
    follow_up = [*question, *[item.model_dump(exclude_none=True) for item in first.output],
                 {"type": "function_call_output", "call_id": call.call_id, "output": "-5C"}]
    assert client.responses.create(model=MODELS["anthropic"], input=follow_up, tools=[WEATHER],
                                   reasoning={"effort": "low"}).output_text == "Cold."
    assistant = next(m for m in fake_anthropic.requests[-1].body["messages"] if m["role"] == "assistant")
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Let me check.", "signature": "sig-123"}


def test_failure_after_the_stream_started_is_response_failed(gateway: GatewayServer, fake_anthropic) -> None:
    fake_anthropic.enqueue(Fault("stream_error", after_chunks=2, message="upstream broke",
                                 error_type="api_error", then=Reply(text="abcdefgh", chunks=4)))
    events = list(sdk(gateway).responses.create(model=MODELS["anthropic"], input="x", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error is not None
    assert "response.completed" not in [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
def test_input_tokens_are_counted_for_every_upstream(gateway: GatewayServer, fakes, upstream: str) -> None:
    """``client.responses.input_tokens.count``: the upstream's own count for Anthropic and Gemini (the
    fake was asked), an offline count for OpenAI (no upstream call), never zero; nothing is stored."""
    fake = fakes[upstream]
    before = len(fake.requests)
    counted = sdk(gateway).responses.input_tokens.count(
        model=MODELS[upstream], instructions="Answer briefly.",
        input=[{"role": "user", "content": "What is the weather in Paris today?"}], tools=[WEATHER],
    )
    assert counted.object == "response.input_tokens"
    assert counted.input_tokens > 0
    if upstream == "openai":
        assert len(fake.requests) == before
    else:
        assert fake.requests[-1].path.endswith("count_tokens" if upstream == "anthropic" else ":countTokens")
