"""The contract suite's parametrization: one entry per adapter, each served by its own fake.

A new adapter joins the whole suite by adding one ``Target`` to ``TARGETS``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from execution_platform.model import ChatRequest
from execution_platform.providers._http import HttpClient, Timeouts
from execution_platform.providers.base import Provider
from execution_platform.providers.registry import provider_class
from tests.fakes.base import FakeUpstream


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    codec_module: str
    fake_fixture: str

    @property
    def codec(self) -> ModuleType:
        return importlib.import_module(self.codec_module)

    def decode_upstream(self, body: dict[str, Any]) -> ChatRequest:
        """What the adapter sent, read back through the same codec (it is symmetric)."""
        if self.provider == "gemini":
            return self.codec.decode_request(body, model=self.model)
        return self.codec.decode_request(body)


TARGETS = [
    Target("openai", "gpt-4o-mini", "execution_platform.codecs.openai_chat", "fake_openai"),
    Target("anthropic", "claude-sonnet-4-5", "execution_platform.codecs.anthropic_messages", "fake_anthropic"),
    Target("gemini", "gemini-2.5-flash", "execution_platform.codecs.gemini", "fake_gemini"),
]


@dataclass
class Harness:
    target: Target
    fake: FakeUpstream
    provider: Provider

    def request(self, **fields: Any) -> ChatRequest:
        fields.setdefault("messages", [{"role": "user", "content": "Hello"}])
        return ChatRequest.model_validate({"model": self.target.model, **fields})

    def upstream_request(self, index: int = -1) -> ChatRequest:
        calls = [r for r in self.fake.requests if r.method == "POST"]
        return self.target.decode_upstream(calls[index].body)


@pytest.fixture(params=TARGETS, ids=[t.provider for t in TARGETS])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    target: Target = request.param
    fake: FakeUpstream = request.getfixturevalue(target.fake_fixture)
    marker = request.node.get_closest_marker("timeouts")
    timeouts = Timeouts(**{"connect": 2, "read": 5, "total": 20, "stream_idle": 5, **(marker.kwargs if marker else {})})
    http = HttpClient()
    provider = provider_class(target.provider)(
        api_key=fake.api_key, base_url=fake.base_url, timeouts=timeouts, http=http
    )
    yield Harness(target, fake, provider)
    await http.aclose()
