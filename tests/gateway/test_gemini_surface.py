"""The official google-genai SDK, unmodified, against the gateway's Gemini surface (both API versions),
served by the OpenAI and Anthropic fakes: the Gemini wire in front, any provider behind."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes import Reply, ToolCallSpec
from tests.fakes.openai import embedding as openai_embedding

from .conftest import MASTER
from .server import GatewayServer

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5"}
_clients: list[genai.Client] = []


def sdk(gateway: GatewayServer, api_version: str = "v1beta", key: str = "gateway-key") -> genai.Client:
    """A client with retries off; kept referenced because a collected Client closes its transport."""
    client = genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=gateway.url, api_version=api_version, timeout=60_000,
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    _clients.append(client)
    return client


@pytest.fixture(params=["v1beta", "v1"])
def api_version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_generate_content(gateway: GatewayServer, fake_openai, fake_anthropic, provider: str,
                          api_version: str) -> None:
    fake = {"openai": fake_openai, "anthropic": fake_anthropic}[provider]
    fake.enqueue(Reply(text="Hello from behind.", input_tokens=11, output_tokens=5))
    response = sdk(gateway, api_version).models.generate_content(
        model=MODELS[provider], contents="hi",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=50),
    )
    assert response.text == "Hello from behind."
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (11, 5, 16)
    sent = fake.requests[-1].body
    if provider == "anthropic":
        assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert sent["max_tokens"] == 50
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_generate_content_stream(gateway: GatewayServer, fake_openai, fake_anthropic, provider: str,
                                 api_version: str) -> None:
    fake = {"openai": fake_openai, "anthropic": fake_anthropic}[provider]
    fake.enqueue(Reply(text="one two three four", chunks=3, input_tokens=9, output_tokens=4))
    chunks = list(sdk(gateway, api_version).models.generate_content_stream(model=MODELS[provider], contents="hi"))
    assert len(chunks) >= 3
    assert "".join(c.text or "" for c in chunks) == "one two three four"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.prompt_token_count == 9
    assert fake.requests[-1].body["stream"] is True


WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather in a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_function_calling_round_trip(gateway: GatewayServer, fake_openai, fake_anthropic, provider: str) -> None:
    fake = {"openai": fake_openai, "anthropic": fake_anthropic}[provider]
    client = sdk(gateway)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents: list[types.Content] = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    fake.enqueue(Reply(text=None, tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]))
    first = client.models.generate_content(model=MODELS[provider], contents=contents, config=config)
    calls = first.function_calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id  # the upstream's call id travels, so the result can be matched back
    contents += [
        first.candidates[0].content,
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id=calls[0].id, name="get_weather", response={"output": "sunny"}))]),
    ]
    fake.enqueue(Reply(text="It is sunny in Paris."))
    final = client.models.generate_content(model=MODELS[provider], contents=contents, config=config)
    assert final.text == "It is sunny in Paris."
    sent = fake.requests[-1].body
    if provider == "openai":
        tool_turn = [m for m in sent["messages"] if m["role"] == "tool"]
        assert tool_turn[0]["tool_call_id"] == calls[0].id and "sunny" in tool_turn[0]["content"]
        assert sent["tools"][0]["function"]["name"] == "get_weather"
    else:
        blocks = [b for m in sent["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])]
        result = next(b for b in blocks if b["type"] == "tool_result")
        assert result["tool_use_id"] == calls[0].id
        assert sent["tools"][0]["name"] == "get_weather"


def test_count_tokens_exact_from_anthropic(gateway: GatewayServer, fake_anthropic, api_version: str) -> None:
    counted = sdk(gateway, api_version).models.count_tokens(
        model=MODELS["anthropic"], contents="How many tokens is this sentence, please?")
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"
    direct = httpx.post(f"{fake_anthropic.base_url}/v1/messages/count_tokens", json=fake_anthropic.requests[-1].body,
                        headers={"x-api-key": fake_anthropic.api_key}).json()["input_tokens"]
    assert counted.total_tokens == direct > 0


def test_count_tokens_local_for_openai(gateway: GatewayServer, fake_openai) -> None:
    before = len(fake_openai.requests)
    counted = sdk(gateway).models.count_tokens(model=MODELS["openai"], contents="Hello, world!")
    # o200k_base: "Hello, world!" is 4 tokens, the user role 1, message framing 3, reply priming 3.
    assert counted.total_tokens == 11
    assert len(fake_openai.requests) == before  # OpenAI has no counting endpoint: counted offline


def test_embed_content(gateway: GatewayServer, fake_openai, api_version: str) -> None:
    client = sdk(gateway, api_version)
    one = client.models.embed_content(model="openai/text-embedding-3-small", contents="hello",
                                      config=types.EmbedContentConfig(output_dimensionality=6))
    assert one.embeddings[0].values == pytest.approx(openai_embedding("hello", 6))
    many = client.models.embed_content(model="openai/text-embedding-3-small", contents=["a", "b"])
    assert [e.values for e in many.embeddings] == [pytest.approx(openai_embedding(t, len(e.values)))
                                                   for t, e in zip("ab", many.embeddings, strict=True)]
    assert fake_openai.requests[-1].path == "/v1/embeddings"


def test_errors_in_google_shape(gateway: GatewayServer) -> None:
    with pytest.raises(errors.ClientError) as caught:
        sdk(gateway).models.generate_content(model="nosuch/model", contents="hi")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    raw = httpx.post(f"{gateway.url}/v1beta/models/openai/gpt-4o-mini:frobnicate", json={})
    assert raw.status_code == 404 and raw.json()["error"]["status"] == "NOT_FOUND"
    bad = httpx.post(f"{gateway.url}/v1/models/openai/gpt-4o-mini:generateContent", json={"contents": "x"})
    assert bad.status_code == 400 and set(bad.json()["error"]) >= {"code", "message", "status"}


def test_key_header_and_query(make_gateway) -> None:
    gw = make_gateway({"master_key": MASTER})
    with pytest.raises(errors.ClientError) as caught:
        sdk(gw, key="wrong-key-wrong-key").models.count_tokens(model=MODELS["openai"], contents="hi")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"
    assert sdk(gw, key=MASTER).models.count_tokens(model=MODELS["openai"], contents="hi").total_tokens > 0
    url = f"{gw.url}/v1beta/models/openai/gpt-4o-mini:countTokens"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert httpx.post(url, params={"key": MASTER}, json=body).status_code == 200
    assert httpx.post(url, json=body).status_code == 401


def test_encoded_slash_and_list(gateway: GatewayServer, fake_openai) -> None:
    fake_openai.enqueue(Reply(text="encoded"))
    url = f"{gateway.url}/v1beta/models/openai%2Fgpt-4o-mini:generateContent"
    answer = httpx.post(url, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["parts"][0]["text"] == "encoded"
    listed = httpx.get(f"{gateway.url}/v1beta/models").json()
    assert isinstance(listed["models"], list)
    one = httpx.get(f"{gateway.url}/v1beta/models/openai/gpt-4o-mini").json()
    assert one["name"] == "models/openai/gpt-4o-mini" and one["inputTokenLimit"] == 128_000


def test_sdk_lists_models(make_gateway, api_version: str) -> None:
    from execution_platform.config.file import parse_config

    gw = make_gateway(config=parse_config("personas:\n  coder:\n    targets: [openai/gpt-4o-mini]\n"))
    names = [m.name for m in sdk(gw, api_version).models.list()]
    assert "models/persona:coder" in names
    openai_shape = httpx.get(f"{gw.url}/v1/models").json()
    assert openai_shape["object"] == "list"  # without a Google key header it stays OpenAI's list


def test_persona_address(make_gateway, fake_openai) -> None:
    from execution_platform.config.file import parse_config

    gw = make_gateway(config=parse_config("personas:\n  coder:\n    targets: [openai/gpt-4o-mini]\n"
                                          "    system_prompt: You write code.\n"))
    fake_openai.enqueue(Reply(text="persona answer"))
    answer = sdk(gw).models.generate_content(model="persona:coder", contents="hi")
    assert answer.text == "persona answer"
    assert fake_openai.requests[-1].body["messages"][0]["content"] == "You write code."


def test_metrics_label_per_method(gateway: GatewayServer) -> None:
    from execution_platform.gateway.metrics import route_label

    assert route_label("/v1beta/models/openai/gpt-4o-mini:generateContent") == "/v1beta/models/{model}:generateContent"
    assert route_label("/v1/models/persona:x:countTokens") == "/v1/models/{model}:countTokens"
    assert route_label("/v1beta/models/a/b") == "/v1beta/models/{model}:get"
    assert route_label("/v1beta/models/a:frob") == "other"


def test_stream_error_in_google_shape(gateway: GatewayServer, fake_anthropic) -> None:
    from tests.fakes import Fault

    fake_anthropic.enqueue(Fault("stream_error", after_chunks=2, then=Reply(text="one two three four", chunks=4)))
    url = f"{gateway.url}/v1beta/models/anthropic/claude-sonnet-4-5:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with httpx.stream("POST", url, params={"alt": "sse"}, json=body, timeout=10) as response:
        assert response.status_code == 200
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    import json

    last = json.loads(events[-1])
    assert set(last["error"]) >= {"code", "message", "status"} and last["error"]["code"] >= 500
    assert "candidates" in json.loads(events[0])


def test_v1_model_path_without_method_answers_in_google_shape(gateway: GatewayServer) -> None:
    answer = httpx.post(f"{gateway.url}/v1/models/0", json={})
    assert answer.status_code == 404 and answer.json()["error"]["status"] == "NOT_FOUND"


def test_virtual_key_scope_and_unsupported_embeddings(make_gateway, fake_anthropic) -> None:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "scoped", "models": [MODELS["anthropic"]]})
    key = created.json()["key"]
    fake_anthropic.enqueue(Reply(text="allowed"))
    client = sdk(gw, key=key)
    assert client.models.generate_content(model=MODELS["anthropic"], contents="hi").text == "allowed"
    with pytest.raises(errors.ClientError) as denied:
        client.models.generate_content(model=MODELS["openai"], contents="hi")
    assert denied.value.code == 403 and denied.value.status == "PERMISSION_DENIED"
    with pytest.raises(errors.ClientError) as no_embeddings:
        client.models.embed_content(model=MODELS["anthropic"], contents="hi")
    assert no_embeddings.value.code == 400 and "no embeddings" in no_embeddings.value.message


def test_gemini_to_gemini_keeps_thought_signatures(gateway: GatewayServer, fake_gemini) -> None:
    fake_gemini.enqueue(Reply(text="Answer", thinking="Reasoning here", thinking_signature="c2lnbmF0dXJl"))
    response = sdk(gateway).models.generate_content(
        model="gemini/gemini-2.5-flash", contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True)))
    parts = response.candidates[0].content.parts
    assert [(bool(p.thought), p.text) for p in parts] == [(True, "Reasoning here"), (False, "Answer")]
    assert any(p.thought_signature for p in parts)
    assert fake_gemini.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_raw_wire_forms(gateway: GatewayServer, fake_openai) -> None:
    base = f"{gateway.url}/v1beta/models/openai/gpt-4o-mini"
    hi = {"contents": [{"role": "user", "parts": [{"text": "Hello, world!"}]}]}
    fake_openai.enqueue(Reply(text="as an array"))
    array = httpx.post(f"{base}:streamGenerateContent", json=hi).json()  # no alt=sse: one JSON array
    assert isinstance(array, list) and array[0]["candidates"][0]["content"]["parts"][0]["text"] == "as an array"
    wrapped = httpx.post(f"{base}:countTokens", json={"generateContentRequest": {
        "model": "models/openai/gpt-4o-mini", **hi, "systemInstruction": {"parts": [{"text": "Be brief."}]}}})
    plain = httpx.post(f"{base}:countTokens", json=hi)
    assert plain.json() == {"totalTokens": 11}
    assert wrapped.json()["totalTokens"] > 11  # the system instruction is counted too
    batch = httpx.post(f"{gateway.url}/v1beta/models/openai/text-embedding-3-small:batchEmbedContents", json={
        "requests": [{"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4},
                     {"content": {"parts": [{"text": "b"}]}, "outputDimensionality": 5}]})
    assert batch.status_code == 400 and batch.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_control_characters_in_the_model_path(gateway: GatewayServer) -> None:
    answer = httpx.post(f"{gateway.url}/v1/models/c%1B%0A%C3%9D:generateContent", json={"contents": []})
    assert answer.status_code in (400, 404) and answer.json()["error"]["status"] in ("NOT_FOUND", "INVALID_ARGUMENT")
    plain = httpx.post(f"{gateway.url}/v1/models/c%0Ax", json={})
    assert plain.status_code == 404 and plain.json()["error"]["status"] == "NOT_FOUND"


def test_gemini_only_fields_are_mapped_or_dropped_and_named(gateway: GatewayServer, fake_openai, fake_anthropic) -> None:
    """The Gemini surface follows the pass-through rules: ``topK`` maps to Anthropic's ``top_k``, is
    dropped for OpenAI (named in ``x-ep-dropped-params``), and Gemini-only fields never cross."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"topK": 5, "maxOutputTokens": 20, "responseLogprobs": True},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}
    fake_anthropic.enqueue(Reply(text="ok"))
    answer = httpx.post(f"{gateway.url}/v1beta/models/{MODELS['anthropic']}:generateContent", json=body,
                        headers={"x-goog-api-key": "gateway-key"}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert fake_anthropic.requests[-1].body["top_k"] == 5
    assert "safetySettings" in answer.headers["x-ep-dropped-params"]
    fake_openai.enqueue(Reply(text="ok"))
    answer = httpx.post(f"{gateway.url}/v1beta/models/{MODELS['openai']}:generateContent", json=body,
                        headers={"x-goog-api-key": "gateway-key"}, timeout=60)
    assert answer.status_code == 200, answer.text
    sent = fake_openai.requests[-1].body
    assert "top_k" not in sent and "safetySettings" not in sent and sent["max_tokens"] == 20
    assert "generationConfig.topK" in answer.headers["x-ep-dropped-params"]
