"""Model discovery: /v1/models and /v1/models/{id} without a config, in OpenAI's and Anthropic's shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from execution_platform.config.file import parse_config
from execution_platform.model import ChatRequest, ChatResponse, StreamEvent
from execution_platform.providers.base import Provider
from execution_platform.providers.registry import PROVIDERS

from .conftest import MASTER
from .server import GatewayServer

ANTHROPIC = {"anthropic-version": "2023-06-01"}
CONFIG = """
deployments:
  - {name: gpt-a, model_name: fast, provider: openai, model: gpt-4o-mini}
personas:
  reviewer: {targets: [anthropic/claude-sonnet-4-5]}
  coder: {targets: [openai/gpt-4o-mini]}
"""


def ids(gw: GatewayServer, headers: dict[str, str] | None = None) -> list[str]:
    r = httpx.get(gw.url + "/v1/models", headers=headers or {})
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["data"]]


def test_without_a_config_every_keyed_provider_lists_its_models(make_gateway: Any) -> None:
    gw = make_gateway()
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=10)
    models = {m.id: m for m in client.models.list()}
    for address in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash",
                    "openai/text-embedding-3-small"):
        assert address in models
    assert models["anthropic/claude-sonnet-4-5"].owned_by == "anthropic"
    assert not any("tts" in m or "realtime" in m for m in models)  # only what the adapters can serve
    assert len(models) == len(ids(gw))  # no duplicates
    one = client.models.retrieve("openai/gpt-4o-mini")
    assert (one.id, one.object, one.owned_by) == ("openai/gpt-4o-mini", "model", "openai")


def test_a_provider_without_a_key_is_not_listed(make_gateway: Any) -> None:
    gw = make_gateway({"gemini_api_key": None})
    listed = ids(gw)
    assert "openai/gpt-4o-mini" in listed
    assert not [m for m in listed if m.startswith("gemini/")]
    assert httpx.get(gw.url + "/v1/models/gemini/gemini-2.5-flash").status_code == 404


def test_anthropic_shape_with_anthropic_version_and_the_sdk_pages_through_it(make_gateway: Any) -> None:
    gw = make_gateway()
    first = httpx.get(gw.url + "/v1/models", headers=ANTHROPIC, params={"limit": 5}).json()
    assert set(first) == {"data", "has_more", "first_id", "last_id"} and first["has_more"] is True
    entry = first["data"][0]
    assert set(entry) == {"type", "id", "display_name", "created_at"} and entry["type"] == "model"
    assert (first["first_id"], first["last_id"]) == (entry["id"], first["data"][-1]["id"])
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=10)
    listed = [m.id for m in client.models.list(limit=7)]  # auto-pagination follows last_id
    assert listed == ids(gw)
    sonnet = client.models.retrieve("anthropic/claude-sonnet-4-5")
    assert sonnet.display_name == "Claude Sonnet 4.5" and sonnet.created_at.year >= 2024
    before = httpx.get(gw.url + "/v1/models", headers=ANTHROPIC,
                       params={"before_id": listed[7], "limit": 3}).json()
    assert [m["id"] for m in before["data"]] == listed[4:7] and before["has_more"] is True


def test_unknown_model_is_a_404_in_openai_shape(make_gateway: Any) -> None:
    gw = make_gateway()
    r = httpx.get(gw.url + "/v1/models/openai/no-such-model")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found" and r.json()["error"]["type"]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=10)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("anthropic/claude-none")


def test_deployments_and_personas_are_listed_and_a_limited_key_sees_only_its_own(make_gateway: Any) -> None:
    gw = make_gateway({"master_key": MASTER}, config=parse_config(CONFIG))
    master = {"authorization": f"Bearer {MASTER}"}
    everything = ids(gw, master)
    assert everything[:4] == ["fast", "gpt-a", "persona:reviewer", "persona:coder"]
    assert "openai/gpt-4o-mini" in everything
    made = httpx.post(gw.url + "/admin/keys", headers=master, json={"personas": ["reviewer"]})
    key = {"authorization": f"Bearer {made.json()['key']}"}
    assert ids(gw, key) == ["persona:reviewer"]
    assert [m["id"] for m in httpx.get(gw.url + "/v1/models", headers={**key, **ANTHROPIC}).json()["data"]] == [
        "persona:reviewer"]
    assert httpx.get(gw.url + "/v1/models/persona:reviewer", headers=key).json()["owned_by"] == "persona"
    assert httpx.get(gw.url + "/v1/models/persona:coder", headers=key).status_code == 404
    assert httpx.get(gw.url + "/v1/models/openai/gpt-4o-mini", headers=key).status_code == 404


class ToyProvider(Provider):
    """A keyless provider outside the price catalogue (like a local model), registered for one test."""

    name = "toy"
    listed_models = ("toy-small",)

    def __init__(self, **_: Any) -> None:
        pass

    async def chat(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError


def test_a_provider_that_needs_no_key_is_listed_from_the_registry(make_gateway: Any, monkeypatch) -> None:
    monkeypatch.setitem(PROVIDERS, "toy", (__name__, "ToyProvider", None))
    gw = make_gateway()
    models = httpx.get(gw.url + "/v1/models").json()["data"]
    assert {"id": "toy/toy-small", "object": "model", "created": models[0]["created"], "owned_by": "toy"} in models
    assert httpx.get(gw.url + "/health").json()["providers"]["toy"] == {"configured": True}
