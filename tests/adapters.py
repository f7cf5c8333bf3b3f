"""Building one adapter against its fake for provider tests: short timeouts and a pool of its own.

The provider test modules (Anthropic, Gemini, OpenAI, ...) all need an adapter pointed at a fake
upstream with timeouts short enough that a stalled fake fails the test in well under a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from execution_platform.model import ChatRequest, Message
from execution_platform.providers.base import Provider
from execution_platform.providers.http import HttpClient, Timeouts

SHORT = Timeouts(connect=1.0, read=0.5, total=5.0, stream_idle=0.3)

P = TypeVar("P", bound=Provider, covariant=True)


class FakeUpstream(Protocol):
    api_key: str
    base_url: str


class AdapterClass(Protocol[P]):
    def __call__(self, *, api_key: str, base_url: str, timeouts: Timeouts, http: HttpClient) -> P: ...


@asynccontextmanager
async def adapter_on(
    cls: AdapterClass[P], fake: FakeUpstream, *, api_key: str | None = None, timeouts: Timeouts = SHORT
) -> AsyncIterator[P]:
    """``cls`` calling ``fake`` (with its key unless ``api_key`` says otherwise); the pool closes after."""
    http = HttpClient()
    try:
        yield cls(api_key=fake.api_key if api_key is None else api_key, base_url=fake.base_url,
                  timeouts=timeouts, http=http)
    finally:
        await http.aclose()


class Ask(Protocol):
    def __call__(self, text: str = ..., **fields: object) -> ChatRequest: ...


def asker(model: str) -> Ask:
    """``ask("text", **fields)``: a one-user-message request to ``model``, the provider tests' usual question."""

    def ask(text: str = "Hi there", **fields: object) -> ChatRequest:
        return ChatRequest(model=model, messages=[Message(role="user", content=text)], **fields)

    return ask
