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
        assert row["cached_input_tokens"] == read
        assert row["input_tokens"] == usage.input_tokens + read + written
        expected = (usage.input_tokens * price["input_mtok"] + read * price["cache_read_mtok"]
                    + written * price["cache_write_mtok"] + usage.output_tokens * price["output_mtok"])
        assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
    # ...which is what makes a cached turn cheaper than the same prompt paid in full.
    second_prompt = rows[1]["input_tokens"] * price["input_mtok"] + 3 * price["output_mtok"]
    assert rows[1]["cost_usd"] < second_prompt
