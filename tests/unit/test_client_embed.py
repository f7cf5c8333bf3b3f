"""``Client.embed`` against the fake upstreams: addresses, routing and metering by the attempt leaf."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from execution_platform import BudgetExceededError, Client, EmbeddingRequest, InvalidRequestError, SyncClient
from execution_platform.config.file import parse_config
from execution_platform.config.settings import Settings
from execution_platform.money.budgets import Budget
from execution_platform.money.metering import CallContext
from execution_platform.money.ratelimit import RateLimit
from tests.fakes.base import FakeUpstream
from tests.fakes.gemini import embedding as gemini_embedding
from tests.fakes.openai import embedding as openai_embedding
from tests.fakes.script import Fault, Reply

from .test_client import settings_for

CONFIG = """
pricing:
  openai/text-embedding-3-small: {input_per_mtok: 1000, output_per_mtok: 0}
personas:
  coder: {targets: [openai/gpt-4o-mini]}
"""
SMALL = "openai/text-embedding-3-small"


@pytest.fixture
async def metered(fake_openai: FakeUpstream, fake_gemini: FakeUpstream, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(_env_file=None, openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.base_url,
                        gemini_api_key=fake_gemini.api_key, gemini_base_url=fake_gemini.base_url,
                        database_url=f"sqlite:///{tmp_path / 'ep.db'}")
    async with Client(settings, config=parse_config(CONFIG), meter=True) as client:
        yield client


def rows(client: Client) -> list[dict[str, object]]:
    assert client.meter is not None and client.meter.ledger is not None
    return client.meter.ledger.rows_sync()


async def test_openai_and_gemini_addresses(fake_openai: FakeUpstream, fake_gemini: FakeUpstream) -> None:
    async with Client(settings_for(openai=fake_openai, gemini=fake_gemini)) as client:
        small = await client.embed(EmbeddingRequest(model=SMALL, inputs=["a b", "c"], dimensions=8))
        gem = await client.embed(EmbeddingRequest(model="gemini/gemini-embedding-001", inputs=["hi"], dimensions=4))
    assert small.vectors == [pytest.approx(openai_embedding(t, 8)) for t in ("a b", "c")]
    assert (small.provider, small.model, small.usage.input_tokens, small.cost_usd) == (
        "openai", "text-embedding-3-small", 3, None)  # no meter, no price
    assert fake_openai.requests[-1].body == {"model": "text-embedding-3-small", "input": ["a b", "c"],
                                             "encoding_format": "float", "dimensions": 8}
    assert gem.vectors == [pytest.approx(gemini_embedding("hi", 4))]
    assert (gem.provider, gem.model, gem.usage.input_tokens) == ("gemini", "gemini-embedding-001", 0)
    assert fake_gemini.requests[-1].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"


async def test_a_provider_or_persona_without_embeddings_is_a_400(fake_anthropic: FakeUpstream,
                                                                 metered: Client) -> None:
    async with Client(settings_for(anthropic=fake_anthropic)) as client:
        with pytest.raises(InvalidRequestError, match="no embeddings"):
            await client.embed(EmbeddingRequest(model="anthropic/claude-sonnet-4-5", inputs=["x"]))
    assert fake_anthropic.requests == []
    with pytest.raises(InvalidRequestError, match="no embeddings"):
        await metered.embed(EmbeddingRequest(model="persona:coder", inputs=["x"]))


async def test_metered_embeddings_get_a_ledger_row_from_the_attempt_leaf(metered: Client) -> None:
    payer = CallContext(key_id="k1", team="research", run_id="run-1", session_id="s-1",
                        request_limits=[RateLimit("key", "k1", rpm=10)])
    answer = await metered.embed(EmbeddingRequest(model=SMALL, inputs=["a b", "c"]), payer=payer)
    assert answer.cost_usd == pytest.approx(0.003)  # 3 tokens at $1000 per million
    assert [(a.provider, a.model, a.status) for a in answer.attempts] == [("openai", "text-embedding-3-small", "ok")]
    assert (payer.cost_usd, payer.attempts, payer.status) == (pytest.approx(0.003), 1, "ok")
    assert payer.rate_headers.remaining_requests == 9  # admitted once for the request
    [row] = rows(metered)
    assert row["request_id"] == payer.request_id and row["attempt"] == 1
    assert (row["key_id"], row["team"], row["run_id"], row["session_id"]) == ("k1", "research", "run-1", "s-1")
    assert (row["provider"], row["model"], row["status"]) == ("openai", "text-embedding-3-small", "ok")
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"]) == (3, 0, pytest.approx(0.003))


async def test_every_attempt_is_metered_and_a_retry_follows_a_server_error(
    metered: Client, fake_openai: FakeUpstream
) -> None:
    fake_openai.enqueue(Fault(kind="status", status=500), Reply())
    payer = CallContext()
    answer = await metered.embed(EmbeddingRequest(model=SMALL, inputs=["a b"]), payer=payer)
    assert [a.status for a in answer.attempts] == ["error", "ok"] and payer.attempts == 2
    assert [(r["attempt"], r["status"], r["input_tokens"]) for r in rows(metered)] == [(1, "error", 0), (2, "ok", 2)]


async def test_gemini_tokens_are_estimated_when_the_answer_has_none(metered: Client) -> None:
    answer = await metered.embed(EmbeddingRequest(model="gemini/gemini-embedding-001", inputs=["hello there"]))
    [row] = rows(metered)
    assert answer.usage.input_tokens == 0  # as the upstream reported it
    assert row["input_tokens"] > 0 and answer.cost_usd == pytest.approx(row["cost_usd"])


async def test_a_budget_that_cannot_cover_the_attempt_is_a_402_before_the_upstream(
    metered: Client, fake_openai: FakeUpstream
) -> None:
    calls = len(fake_openai.requests)
    limit = RateLimit("key", "poor", rpm=1)
    for _ in range(2):  # refused for money twice: the refusal gives the key's one request a minute back
        payer = CallContext(key_id="poor", budgets=[Budget("key", "poor", limit_usd=0.001)], request_limits=[limit])
        with pytest.raises(BudgetExceededError) as refused:
            await metered.embed(EmbeddingRequest(model=SMALL, inputs=["hello world foo"]), payer=payer)
        assert refused.value.status_code == 402
    assert len(fake_openai.requests) == calls and rows(metered) == []


def test_without_a_router_the_direct_provider_is_metered_too(fake_openai: FakeUpstream, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.base_url,
                        database_url=f"sqlite:///{tmp_path / 'ep.db'}")
    with SyncClient(settings, meter=True) as client:
        payer = CallContext(key_id="k2")
        answer = client.embed(EmbeddingRequest(model=SMALL, inputs=["a b c"]), payer=payer)
        assert client._client.router is None
        [row] = rows(client._client)
    assert answer.vectors == [pytest.approx(openai_embedding("a b c", 1536))]
    assert (row["key_id"], row["provider"], row["attempt"], row["input_tokens"]) == ("k2", "openai", 1, 3)
    assert answer.cost_usd == pytest.approx(row["cost_usd"]) and payer.cost_usd == answer.cost_usd
