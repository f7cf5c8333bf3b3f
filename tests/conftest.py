"""Shared fixtures: one fake upstream per provider for the whole session, reset before each test."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from tests.fakes.base import FakeUpstream

FAKES = {
    "openai": ("tests.fakes.openai", "FakeOpenAI"),
    "anthropic": ("tests.fakes.anthropic", "FakeAnthropic"),
    "gemini": ("tests.fakes.gemini", "FakeGemini"),
}


def make_fake(provider: str) -> FakeUpstream:
    module, cls = FAKES[provider]
    return getattr(importlib.import_module(module), cls)()


@pytest.fixture(scope="session")
def fake_servers() -> Iterator[dict[str, FakeUpstream]]:
    """Started on first use, one per provider, stopped at the end of the session."""
    servers: dict[str, FakeUpstream] = {}

    class Lazy(dict):
        def __missing__(self, provider: str) -> FakeUpstream:
            fake = make_fake(provider).start()
            servers[provider] = fake
            self[provider] = fake
            return fake

    yield Lazy()
    for fake in servers.values():
        fake.stop()


def _fresh(fake_servers: dict[str, FakeUpstream], provider: str) -> FakeUpstream:
    fake = fake_servers[provider]
    fake.reset()
    return fake


@pytest.fixture
def fake_openai(fake_servers: dict[str, FakeUpstream]) -> FakeUpstream:
    return _fresh(fake_servers, "openai")


@pytest.fixture
def fake_anthropic(fake_servers: dict[str, FakeUpstream]) -> FakeUpstream:
    return _fresh(fake_servers, "anthropic")


@pytest.fixture
def fake_gemini(fake_servers: dict[str, FakeUpstream]) -> FakeUpstream:
    return _fresh(fake_servers, "gemini")
