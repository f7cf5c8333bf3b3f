"""Prompt caching end to end: Anthropic breakpoints reach the upstream, cached tokens reach every
surface's usage and the ledger prices them at the model's cache rates."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest
from genai_prices import data_snapshot

from tests.fakes.script import Reply

from .server import GatewayServer

MODEL = "claude-haiku-4-5"  # a flat (untiered) bundled price, so the expected cost is one formula
SYSTEM = [{"type": "text", "text": "You are a careful reviewer. " * 40, "cache_control": {"type": "ephemeral"}}]
FIRST = "Review this function: def add(a, b): return a - b"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}


def rates() -> dict[str, float]:
    """USD per token for MODEL, read straight from the bundled genai-prices catalogue."""
    _, info = data_snapshot.get_snapshot().find_provider_model(MODEL, None, "anthropic", None)
    p = info.prices
    return {k: float(getattr(p, k)) / 1e6 for k in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")}


def ledger_rows(gw: GatewayServer) -> list[dict[str, Any]]:
    return gw.gateway.client.meter.ledger.rows_sync()


@pytest.fixture
def gw(make_gateway: Any) -> GatewayServer:
    return make_gateway()


def test_two_turn_anthropic_conversation_reads_its_cache_and_pays_the_cache_price(
    gw: GatewayServer, fake_anthropic: Any
) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=10)
    fake_anthropic.enqueue(Reply(text="It subtracts.", input_tokens=5, output_tokens=4),
                           Reply(text="Use a + b.", input_tokens=6, output_tokens=3, chunks=2))
    first = client.messages.create(model=f"anthropic/{MODEL}", max_tokens=200, system=SYSTEM,
                                   messages=[user(FIRST)])
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": first.content[0].text}]
    with client.messages.stream(model=f"anthropic/{MODEL}", max_tokens=200, system=SYSTEM,
                                messages=[*history, user("How do I fix it?")]) as stream:
        second = stream.get_final_message()

    # The breakpoints arrived upstream where the client put them.
    bodies = [r.body for r in fake_anthropic.requests]
    for body in bodies:
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    # Turn one wrote the cache, turn two read it (and wrote only its new tail).
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens >= first.usage.cache_creation_input_tokens
    assert 0 < second.usage.cache_creation_input_tokens < second.usage.cache_read_input_tokens
    assert (first.usage.input_tokens, second.usage.input_tokens) == (5, 6)

    price = rates()
    rows = ledger_rows(gw)
    assert len(rows) == 2
    for row, usage in zip(rows, (first.usage, second.usage), strict=True):
        read, written = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
        assert (row["cached_input_tokens"], row["cache_write_tokens"]) == (read, written)
        assert row["input_tokens"] == usage.input_tokens + read + written
        expected = (usage.input_tokens * price["input_mtok"] + read * price["cache_read_mtok"]
                    + written * price["cache_write_mtok"] + usage.output_tokens * price["output_mtok"])
        assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
    # ...which is what makes a cached turn cheaper than the same prompt paid in full.
    second_prompt = rows[1]["input_tokens"] * price["input_mtok"] + 3 * price["output_mtok"]
    assert rows[1]["cost_usd"] < second_prompt


def test_openai_sdk_sees_the_anthropic_upstreams_cache_reads(gw: GatewayServer, fake_anthropic: Any) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=10)
    fake_anthropic.enqueue(Reply(input_tokens=300, cached_input_tokens=256),
                           Reply(input_tokens=300, cached_input_tokens=256))
    answer = client.chat.completions.create(model=f"anthropic/{MODEL}", messages=[{"role": "user", "content": "hi"}])
    assert answer.usage is not None and answer.usage.prompt_tokens == 300
    assert answer.usage.prompt_tokens_details.cached_tokens == 256
    chunks = list(client.chat.completions.create(model=f"anthropic/{MODEL}", stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "hi"}]))
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == 256


def test_anthropic_sdk_sees_the_openai_upstreams_cache_reads(gw: GatewayServer, fake_openai: Any) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=10)
    fake_openai.enqueue(Reply(input_tokens=300, cached_input_tokens=128))
    message = client.messages.create(model="openai/gpt-4o-mini", max_tokens=50,
                                     messages=[{"role": "user", "content": "hi"}])
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (172, 128)


def test_native_chat_carries_breakpoints_and_reports_cache_reads_and_writes(
    gw: GatewayServer, fake_anthropic: Any
) -> None:
    mark = {"type": "ephemeral"}
    body = {"model": f"anthropic/{MODEL}", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Rules. " * 50, "cache_control": mark}]},
        {"role": "user", "content": "hi"},
    ]}
    usages = []
    for _ in range(2):
        r = httpx.post(gw.url + "/chat", json=body, timeout=10)
        assert r.status_code == 200, r.text
        usages.append(r.json()["usage"])
    assert fake_anthropic.requests[0].body["system"] == [{"type": "text", "text": "Rules. " * 50,
                                                          "cache_control": mark}]
    assert usages[0]["cache_write_tokens"] > 0 and usages[0]["cached_input_tokens"] == 0
    assert usages[1]["cached_input_tokens"] == usages[0]["cache_write_tokens"]
    assert usages[1]["cache_write_tokens"] == 0


def test_prompt_cache_key_reaches_an_openai_upstream_and_its_cache_reads_come_back(
    gw: GatewayServer, fake_openai: Any, fake_anthropic: Any
) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=10)
    history = [{"role": "system", "content": "Be terse. " * 30}, {"role": "user", "content": "hi"}]
    first = client.chat.completions.create(model="openai/gpt-4o-mini", messages=history, prompt_cache_key="conv-1")
    second = client.chat.completions.create(
        model="openai/gpt-4o-mini", prompt_cache_key="conv-1",
        messages=[*history, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}])
    assert [r.body["prompt_cache_key"] for r in fake_openai.requests] == ["conv-1", "conv-1"]
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens > 0
    # A hint only: an upstream of another format never sees it (and does not refuse the call).
    client.chat.completions.create(model=f"anthropic/{MODEL}", messages=history, prompt_cache_key="conv-1")
    assert "prompt_cache_key" not in fake_anthropic.requests[-1].body


def test_openai_clients_reach_the_anthropic_cache_with_part_level_cache_control(
    gw: GatewayServer, fake_anthropic: Any
) -> None:
    """The gateway convention (LiteLLM, OpenRouter): ``cache_control`` on an OpenAI content part."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=10)
    system = {"role": "system", "content": [{"type": "text", "text": "Rules. " * 50,
                                             "cache_control": {"type": "ephemeral"}}]}
    answers = [client.chat.completions.create(model=f"anthropic/{MODEL}",
                                              messages=[system, {"role": "user", "content": "hi"}])
               for _ in range(2)]
    assert fake_anthropic.requests[0].body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert answers[0].usage.prompt_tokens_details.cached_tokens == 0
    assert answers[1].usage.prompt_tokens_details.cached_tokens > 0


def test_one_hour_breakpoints_are_priced_at_the_one_hour_write_rate(gw: GatewayServer, fake_anthropic: Any) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=10)
    system = [{**SYSTEM[0], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    fake_anthropic.enqueue(Reply(input_tokens=5, output_tokens=4))
    message = client.messages.create(model=f"anthropic/{MODEL}", max_tokens=50, system=system,
                                     messages=[{"role": "user", "content": "hi"}])
    assert fake_anthropic.requests[0].body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    written = message.usage.cache_creation_input_tokens
    assert written > 0 and message.usage.cache_creation.ephemeral_1h_input_tokens == written
    _, info = data_snapshot.get_snapshot().find_provider_model(MODEL, None, "anthropic", None)
    hour_rate = float(info.prices.cache_write_1h_mtok) / 1e6
    price = rates()
    [row] = ledger_rows(gw)
    assert row["cost_usd"] == pytest.approx(5 * price["input_mtok"] + written * hour_rate + 4 * price["output_mtok"],
                                            rel=1e-9)
