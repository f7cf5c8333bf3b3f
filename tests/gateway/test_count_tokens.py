"""``POST /v1/messages/count_tokens`` through the official ``anthropic`` SDK and langchain-anthropic, for
every upstream: the upstream's own count where it has one (Anthropic, Gemini), an offline count for
OpenAI, and a persona counted by its first target."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, SystemMessage

from execution_platform.config.file import parse_config
from tests.fakes.base import FakeUpstream

from .server import GatewayServer
from .test_anthropic_sdk import MODELS, TOOLS

SYSTEM = "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."
QUESTION = "This late pivot means we don't have time to boil the ocean for the client deliverable."


def sdk(gateway: GatewayServer) -> anthropic.Anthropic:
    # Generous timeout: the first offline count in a process loads the tokenizer, slow on a loaded CI box.
    return anthropic.Anthropic(base_url=gateway.url, api_key="gateway-key", max_retries=0, timeout=60)


def upstream_count(fake: FakeUpstream) -> int:
    """What the fake answers when the body the gateway sent it is posted to it directly."""
    sent = fake.requests[-1]
    if fake.provider == "anthropic":
        answer = httpx.post(f"{fake.base_url}/v1/messages/count_tokens", json=sent.body,
                            headers={"x-api-key": fake.api_key})
        return answer.json()["input_tokens"]
    answer = httpx.post(f"{fake.origin}{sent.path}", json=sent.body, headers={"x-goog-api-key": fake.api_key})
    return answer.json()["totalTokens"]


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_exact_count_comes_from_the_upstream(gateway: GatewayServer, fake_anthropic, fake_gemini,
                                             provider: str) -> None:
    fake = {"anthropic": fake_anthropic, "gemini": fake_gemini}[provider]
    counted = sdk(gateway).messages.count_tokens(
        model=MODELS[provider], system=SYSTEM, tools=TOOLS,
        messages=[{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Noted."},
                  {"role": "user", "content": "And in one word?"}],
    )
    expected_path = "/v1/messages/count_tokens" if provider == "anthropic" else ":countTokens"
    assert fake.requests[-1].path.endswith(expected_path)
    assert counted.input_tokens == upstream_count(fake) > 0
    if provider == "gemini":  # the whole request goes along: system instruction and tools too
        sent = fake.requests[-1].body["generateContentRequest"]
        assert sent["systemInstruction"]["parts"][0]["text"] == SYSTEM and sent["tools"]


def test_openai_is_counted_offline(gateway: GatewayServer, fake_openai) -> None:
    before = len(fake_openai.requests)
    counted = sdk(gateway).messages.count_tokens(
        model=MODELS["openai"], system=SYSTEM, messages=[{"role": "user", "content": QUESTION}])
    # Reference: OpenAI's published counting rule for gpt-4o with o200k_base (3 per message + role +
    # text, 3 to prime the reply): system 3+1+17, user 3+1+18, priming 3.
    assert counted.input_tokens == 46
    assert len(fake_openai.requests) == before


def test_tools_are_counted(gateway: GatewayServer) -> None:
    client = sdk(gateway)
    plain = client.messages.count_tokens(model=MODELS["openai"], messages=[{"role": "user", "content": "hi"}])
    with_tools = client.messages.count_tokens(model=MODELS["openai"], tools=TOOLS,
                                              messages=[{"role": "user", "content": "hi"}])
    assert with_tools.input_tokens > plain.input_tokens + 20


def test_persona_counts_with_its_first_target(make_gateway, fake_anthropic) -> None:
    config = parse_config("personas:\n  helper:\n    targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o-mini]\n"
                          "    system_prompt: You help.\n")
    gw = make_gateway(config=config)
    counted = sdk(gw).messages.count_tokens(model="persona:helper", messages=[{"role": "user", "content": "hi"}])
    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages/count_tokens" and sent.body["model"] == "claude-sonnet-4-5"
    assert "You help." in str(sent.body["system"])  # counted as it will be sent: persona prompt included
    assert counted.input_tokens == upstream_count(fake_anthropic)


def test_errors_in_anthropic_shape(gateway: GatewayServer) -> None:
    answer = httpx.post(f"{gateway.url}/v1/messages/count_tokens", json={"model": "nosuch/x", "messages": []})
    assert answer.status_code in (400, 404)
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"]


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
def test_langchain_anthropic_counts(gateway: GatewayServer, fake_anthropic, fake_gemini, fake_openai,
                                    provider: str) -> None:
    llm = ChatAnthropic(model=MODELS[provider], base_url=gateway.url, api_key="gateway-key", max_retries=0,
                        timeout=60)
    counted = llm.get_num_tokens_from_messages([SystemMessage(SYSTEM), HumanMessage(QUESTION)])
    if provider == "openai":
        assert counted == 46
    else:
        fake = {"anthropic": fake_anthropic, "gemini": fake_gemini}[provider]
        assert counted == upstream_count(fake) > 0
