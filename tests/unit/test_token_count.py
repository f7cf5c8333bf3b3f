"""The offline counter against OpenAI's own published numbers, and the wrappers that route a count."""

from __future__ import annotations

import asyncio

import pytest

from execution_platform.model import ChatRequest
from execution_platform.providers.token_count import count_request_tokens, text_tokens

# OpenAI's token-counting guide: this conversation is 124 prompt tokens at gpt-4o / gpt-4o-mini, as
# reported by the API itself in the guide's output.
GUIDE_EXAMPLE = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
                                  "jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more time to touch base "
                                                          "on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


def test_matches_the_api_reported_count() -> None:
    assert count_request_tokens(ChatRequest(model="gpt-4o", messages=GUIDE_EXAMPLE)) == 124


def test_text_is_tokenized_with_o200k() -> None:
    assert text_tokens("Hello, world!") == 4  # [13225, 11, 2375, 0] in o200k_base
    assert text_tokens("<|endoftext|>") > 1  # special-token text is counted as text, not refused
    assert text_tokens("") == 0


def test_never_zero_and_tools_images_count() -> None:
    empty = ChatRequest(model="m", messages=[{"role": "user", "content": ""}])
    assert count_request_tokens(empty) > 0
    tool = {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    with_tool = ChatRequest(model="m", messages=[{"role": "user", "content": ""}], tools=[tool])
    assert count_request_tokens(with_tool) > count_request_tokens(empty) + 10
    image = ChatRequest(model="m", messages=[{"role": "user", "content": [
        {"type": "image", "url": "https://example.com/cat.png"}]}])
    assert count_request_tokens(image) > 500


def test_a_wrapper_counts_through_its_inner_provider() -> None:
    from execution_platform.routing.endpoint import Endpoint
    from execution_platform.routing.retry import RetryingProvider
    from tests.fakes.scripted import ScriptedProvider

    class Counting(ScriptedProvider):
        async def count_tokens(self, request: ChatRequest) -> int:
            self.counted = request.model
            return 42

    leaf = Counting("p")
    stack = RetryingProvider(Endpoint(leaf, model="own-name"))
    assert asyncio.run(stack.count_tokens(ChatRequest(model="addr", messages=[{"role": "user", "content": "x"}]))) == 42
    assert leaf.counted == "own-name"


async def test_client_counts_upstream_where_it_can(fake_anthropic, fake_gemini, fake_openai) -> None:
    from execution_platform import Client
    from execution_platform.errors import AuthenticationError
    from tests.unit.test_client import settings_for

    hi = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "four words right here"}]
    settings = settings_for(anthropic=fake_anthropic, gemini=fake_gemini, openai=fake_openai)
    async with Client(settings) as client:
        gemini = await client.count_tokens(Client.build_request("gemini/gemini-2.5-flash", hi))
        anthropic = await client.count_tokens(Client.build_request("anthropic/claude-sonnet-4-5", hi))
        openai = await client.count_tokens(Client.build_request("openai/gpt-4o-mini", hi))
    assert gemini == 4  # the fake counts words of ``contents``
    sent = fake_gemini.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert sent.body["generateContentRequest"]["model"] == "models/gemini-2.5-flash"
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"
    assert "max_tokens" not in fake_anthropic.requests[-1].body  # the counting endpoint refuses it
    assert anthropic > 0
    assert openai == 3 + (3 + 1 + text_tokens("Be brief.")) + (3 + 1 + text_tokens("four words right here"))
    assert fake_openai.requests == []
    async with Client(settings_for(anthropic=fake_anthropic)) as client:
        fake_anthropic.api_key, real = "other", fake_anthropic.api_key
        try:
            with pytest.raises(AuthenticationError):
                await client.count_tokens(Client.build_request("anthropic/claude-sonnet-4-5", hi))
        finally:
            fake_anthropic.api_key = real


def test_sync_client_counts(fake_openai) -> None:
    from execution_platform import Client, SyncClient
    from tests.unit.test_client import settings_for

    with SyncClient(settings_for(openai=fake_openai)) as client:
        request = Client.build_request("openai/gpt-4o-mini", [{"role": "user", "content": "Hello, world!"}])
        assert client.count_tokens(request) == 11
