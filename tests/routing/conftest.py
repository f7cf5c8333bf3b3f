"""Helpers for routing tests over the fake upstreams: a Router built from YAML text."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable

import pytest

from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.providers.http import shared_client
from execution_platform.routing import Router
from tests.fakes.base import FakeUpstream


@pytest.fixture
def fakes(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_gemini: FakeUpstream) -> dict[str, FakeUpstream]:
    return {"openai": fake_openai, "anthropic": fake_anthropic, "gemini": fake_gemini}


def providers_yaml(fakes: dict[str, FakeUpstream]) -> str:
    return "providers:\n" + "".join(
        f"  {name}: {{api_key: {fake.api_key}, base_url: '{fake.base_url}'}}\n" for name, fake in fakes.items()
    )


@pytest.fixture
def make_router(fakes: dict[str, FakeUpstream]) -> Callable[[str], Router]:
    """Build a Router from YAML (providers pointing at the fakes are prepended)."""

    def build(body: str) -> Router:
        config = parse_config(providers_yaml(fakes) + textwrap.dedent(body))
        return Router(config, Settings(_env_file=None))

    return build


@pytest.fixture(autouse=True)
async def _close_pool() -> AsyncIterator[None]:
    """Each test runs on its own event loop; close the pooled session bound to it."""
    yield
    await shared_client().aclose()
