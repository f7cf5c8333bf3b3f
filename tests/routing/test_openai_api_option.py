"""``api: responses`` in the config sends OpenAI calls through the Responses API: per provider, per
model and per deployment; everything else keeps chat completions."""

from __future__ import annotations

import pytest

from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.model import ChatRequest, StreamAccumulator
from execution_platform.routing import Router
from tests.fakes import Reply
from tests.routing.conftest import providers_yaml

CONFIG = """
deployments:
  - {name: pro, provider: openai, model: gpt-4o, api: responses}
  - {name: plain, provider: openai, model: gpt-4o}
"""


def req(model: str) -> ChatRequest:
    return ChatRequest.model_validate({"model": model, "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.parametrize(("body", "address", "path"), [
    (CONFIG, "pro", "/v1/responses"),
    (CONFIG, "plain", "/v1/chat/completions"),
    (CONFIG, "openai/gpt-4o", "/v1/chat/completions"),
])
async def test_deployment_api(make_router, fakes, body: str, address: str, path: str) -> None:
    fakes["openai"].enqueue(Reply(text="ok"), Reply(text="ok"))
    provider, request = make_router(body).resolve(req(address))
    assert (await provider.chat(request)).message.text == "ok"
    acc = StreamAccumulator()
    async for event in provider.stream(request):
        acc.add(event)
    assert acc.response().message.text == "ok"
    assert [r.path for r in fakes["openai"].requests[-2:]] == [path, path]


async def test_provider_and_model_api(make_router, fakes) -> None:
    fakes["openai"].enqueue(Reply(text="a"), Reply(text="b"))
    yaml = providers_yaml(fakes).replace("  openai: {", "  openai: {model_api: {gpt-4.1: responses}, ")
    router = Router(parse_config(yaml), Settings(_env_file=None))
    for address in ("openai/gpt-4.1", "openai/gpt-4o"):
        provider, request = router.resolve(req(address))
        await provider.chat(request)
    assert [r.path for r in fakes["openai"].requests[-2:]] == ["/v1/responses", "/v1/chat/completions"]
