"""The Router over the real adapters and fakes: addressing, persona rewriting, reload, capabilities."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from execution_platform.client import Client
from execution_platform.config.file import load_config
from execution_platform.config.settings import Settings
from execution_platform.errors import CapabilityMissingError, NotFoundError, PermissionDeniedError
from execution_platform.model import ChatRequest, ImagePart, Message, TextPart
from execution_platform.routing import Router, attempts_of
from tests.fakes.script import Fault, Reply

from .conftest import providers_yaml

PERSONAS = """
personas:
  architect:
    targets:
      - openai/gpt-4o-mini
      - {target: anthropic/claude-sonnet-4-5, temperature: 0.9, provider_options: {top_k: 5}}
    system_prompt: You are the architect.
    params: {temperature: 0.2, max_tokens: 512}
    tools: [read_file]
  seer:
    targets: [openai/o3-mini, gemini/gemini-2.5-flash]
  blind:
    targets: [openai/o3-mini, gemini/gemini-2.5-flash]
capabilities:
  gemini/gemini-2.5-flash: {vision: false}
deployments:
  - {name: key-a, model_name: fast, provider: openai, model: gpt-4o-mini, weight: 3}
  - {name: key-b, model_name: fast, provider: openai, model: gpt-4o-mini, weight: 1}
"""


def req(model: str, content: object = "hello", **kw: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": model, "messages": [{"role": "user", "content": content}], **kw})


async def test_persona_prepends_prompt_applies_params_and_tags(make_router, fakes) -> None:
    router = make_router(PERSONAS)
    provider, request = router.resolve(req("persona:architect", temperature=0.7))
    assert request.messages[0].role == "system" and request.messages[0].text == "You are the architect."
    assert request.temperature == 0.7  # the caller's explicit value wins over the persona default
    assert request.max_tokens == 512
    assert request.metadata.persona == "architect"
    response = await provider.chat(request)
    body = fakes["openai"].requests[-1].body
    assert body["model"] == "gpt-4o-mini" and body["messages"][0]["content"] == "You are the architect."
    assert response.attempts[0].provider == "openai"


async def test_target_overrides_apply_on_fallback(make_router, fakes) -> None:
    fakes["openai"].enqueue(Fault("status", status=503), Fault("status", status=503))
    router = make_router(PERSONAS)
    provider, request = router.resolve(req("persona:architect"))
    response = await provider.chat(request)
    assert response.attempts[-1].provider == "anthropic"
    body = fakes["anthropic"].requests[-1].body
    assert body["temperature"] == 0.9 and body["top_k"] == 5 and body["max_tokens"] == 512


async def test_unknown_persona_and_model_are_404(make_router) -> None:
    router = make_router(PERSONAS)
    with pytest.raises(NotFoundError):
        router.resolve(req("persona:nobody"))
    with pytest.raises(NotFoundError):
        router.resolve(req("nonsense"))
    with pytest.raises(NotFoundError):
        router.resolve(req("mystery/model-x"))


async def test_tool_outside_allow_list_is_refused(make_router) -> None:
    router = make_router(PERSONAS)
    tools = [{"name": "delete_everything", "parameters": {"type": "object", "properties": {}}}]
    with pytest.raises(PermissionDeniedError, match="delete_everything"):
        router.resolve(req("persona:architect", tools=tools))


def image_request(model: str) -> ChatRequest:
    msg = Message(role="user", content=[TextPart(text="what is it?"), ImagePart(data="aGk=", media_type="image/png")])
    return ChatRequest(model=model, messages=[msg])


async def test_image_goes_to_first_target_with_vision(make_router, fakes) -> None:
    router = make_router(PERSONAS.replace("gemini/gemini-2.5-flash: {vision: false}", "gemini/gemini-2.5-flash: {}"))
    provider, request = router.resolve(image_request("persona:seer"))
    response = await provider.chat(request)
    assert fakes["openai"].requests == [] and len(fakes["gemini"].requests) == 1
    assert [(a.provider, a.status) for a in response.attempts] == [("openai", "skipped"), ("gemini", "ok")]


async def test_image_with_no_vision_target_is_412(make_router, fakes) -> None:
    router = make_router(PERSONAS)  # o3-mini has no vision; config switches gemini's off
    provider, request = router.resolve(image_request("persona:blind"))
    with pytest.raises(CapabilityMissingError) as info:
        await provider.chat(request)
    assert info.value.status_code == 412 and "vision" in info.value.message
    assert fakes["openai"].requests == [] and fakes["gemini"].requests == []


async def test_model_name_is_load_balanced_by_weight(make_router, fakes) -> None:
    router = make_router(PERSONAS)
    provider, request = router.resolve(req("fast"))
    provider.inner._rng = random.Random(5)  # the balancer under the retry layer
    served = [(await provider.chat(request)).attempts[-1].deployment for _ in range(80)]
    assert served.count("key-a") > served.count("key-b") > 5


async def test_one_line_switch_and_reload(tmp_path: Path, fakes) -> None:
    path = tmp_path / "ep.yaml"
    path.write_text(providers_yaml(fakes) + "personas:\n  coder:\n    targets: [openai/gpt-4o-mini]\n")
    router = Router(load_config(path), Settings(_env_file=None))
    fakes["openai"].enqueue(Fault("slow_first_byte", delay=0.3, then=Reply(text="old chain")))
    provider, request = router.resolve(req("persona:coder"))
    in_flight = asyncio.create_task(provider.chat(request))
    await asyncio.sleep(0.05)

    path.write_text(path.read_text().replace("openai/gpt-4o-mini", "gemini/gemini-2.5-flash"))
    router.reload(load_config(path))
    provider, request = router.resolve(req("persona:coder"))
    response = await provider.chat(request)
    assert response.attempts[-1].provider == "gemini" and len(fakes["gemini"].requests) == 1

    old = await in_flight  # the call that started before the reload finished on its own chain
    assert old.message.text == "old chain" and old.attempts[-1].provider == "openai"


async def test_client_with_config_routes_personas(tmp_path: Path, fakes) -> None:
    path = tmp_path / "ep.yaml"
    path.write_text(providers_yaml(fakes) + "personas:\n  r:\n    targets: [anthropic/claude-sonnet-4-5]\n")
    async with Client(Settings(_env_file=None), config=path) as client:
        answer = await client.chat(model="persona:r", messages=[{"role": "user", "content": "hi"}])
        assert answer.provider == "anthropic" and answer.attempts
        events = [e async for e in client.stream(model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])]
        assert events[0].type == "start" and events[-1].type == "finish"
    assert len(fakes["gemini"].requests) == 1


async def test_capabilities_table_applies_overrides(make_router) -> None:
    table = make_router(PERSONAS).capabilities_table()
    assert table["gemini/gemini-2.5-flash"].vision is False
    assert table["openai/gpt-4o-mini"].vision is True
    assert set(table) >= {"key-a", "key-b", "fast", "openai/o3-mini"}


async def test_errors_carry_attempts_for_the_gateway(make_router, fakes) -> None:
    fakes["openai"].enqueue(Fault("status", status=503), Fault("status", status=503))
    router = make_router("personas:\n  solo:\n    targets: [openai/gpt-4o-mini]\n")
    provider, request = router.resolve(req("persona:solo"))
    with pytest.raises(Exception) as info:
        await provider.chat(request)
    assert info.value.status_code == 502
    assert len(attempts_of(info.value)) == 2


async def test_closing_a_routed_stream_closes_the_upstream_connection(make_router, fakes) -> None:
    fakes["openai"].enqueue(Fault("stall", after_chunks=3, delay=5, then=Reply(text="a b c d", chunks=4)))
    router = make_router("personas:\n  p:\n    targets: [openai/gpt-4o-mini, gemini/gemini-2.5-flash]\n")
    provider, request = router.resolve(req("persona:p"))
    stream = provider.stream(request)
    baseline = fakes["openai"].connections_closed
    async for event in stream:
        if event.type == "text_delta":
            break
    await stream.aclose()
    assert await asyncio.to_thread(fakes["openai"].wait_connections_closed, baseline)
    assert fakes["gemini"].requests == []


async def test_client_stream_exposes_attempts(tmp_path: Path, fakes) -> None:
    fakes["openai"].enqueue(Fault("status", status=503), Fault("status", status=503))
    path = tmp_path / "ep.yaml"
    path.write_text(providers_yaml(fakes) + "personas:\n  r:\n    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]\n")
    async with Client(Settings(_env_file=None), config=path) as client:
        stream = client.send_stream(req("persona:r"))
        first = await stream.__anext__()
        assert first.type == "start" and first.provider == "anthropic"
        assert [(a.provider, a.status) for a in attempts_of(stream)] == [
            ("openai", "error"), ("openai", "error"), ("anthropic", "ok")
        ]
        rest = [e async for e in stream]
        assert rest[-1].type == "finish"
