"""Prices come from the bundled genai-prices data, offline; overrides win; worst case bounds any usage."""

from __future__ import annotations

import itertools

import pytest
from genai_prices import update_prices

from execution_platform.model import ChatRequest, ImagePart, Message, TextPart, Usage
from execution_platform.money import pricing
from execution_platform.money.pricing import Price, PriceBook
from execution_platform.money.tokens import prompt_tokens_upper_bound


def test_bundled_price_for_known_models() -> None:
    # gpt-4o-mini: $0.15 in / $0.60 out per MTok
    assert pricing.cost("openai", "gpt-4o-mini", Usage(input_tokens=1_000_000)) == pytest.approx(0.15)
    assert pricing.cost("openai", "gpt-4o-mini", Usage(output_tokens=1_000_000)) == pytest.approx(0.60)
    assert pricing.cost("anthropic", "claude-sonnet-4-5", Usage(input_tokens=1000, output_tokens=1000)) > 0
    assert pricing.cost("gemini", "gemini-2.5-flash", Usage(input_tokens=1000)) > 0
    assert pricing.cost("claude_agent", "sonnet", Usage(input_tokens=1000)) == pricing.cost(
        "anthropic", "claude-sonnet-4-5", Usage(input_tokens=1000)
    )


def test_cached_input_is_cheaper_and_counted_inside_input() -> None:
    plain = pricing.cost("openai", "gpt-4o-mini", Usage(input_tokens=1000))
    cached = pricing.cost("openai", "gpt-4o-mini", Usage(input_tokens=1000, cached_input_tokens=1000))
    assert cached == pytest.approx(plain / 2)  # $0.075 vs $0.15


def test_prices_never_fetched_at_run_time() -> None:
    pricing.cost("openai", "gpt-4o", Usage(input_tokens=10))
    assert update_prices._shared_updater.ref_count == 0
    assert not pricing.data_snapshot.get_snapshot().from_auto_update


def test_override_by_deployment_then_model() -> None:
    book = PriceBook(
        {
            "gpt-a": {"input_per_mtok": 10, "output_per_mtok": 20, "cached_input_per_mtok": 1},
            "gpt-4o-mini": Price(input_per_mtok=2, output_per_mtok=4),
        }
    )
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=500_000, output_tokens=1_000_000)
    assert book.cost("openai", "gpt-4o-mini", usage, deployment="gpt-a") == pytest.approx(5 + 0.5 + 20)
    assert book.cost("openai", "gpt-4o-mini", usage) == pytest.approx(2 + 4)
    with pytest.raises(ValueError, match="unknown price field"):
        PriceBook({"x": {"input": 1}})


def test_reasoning_priced_at_reasoning_rate_when_set() -> None:
    book = PriceBook({"r": {"input_per_mtok": 1, "output_per_mtok": 10, "reasoning_per_mtok": 4}})
    usage = Usage(output_tokens=1_000_000, reasoning_tokens=250_000)
    assert book.cost("x", "r", usage) == pytest.approx(7.5 + 1.0)


def test_one_hour_cache_writes_cost_their_own_rate() -> None:
    """Anthropic prices a 1-hour cache write above a 5-minute one; both above plain input."""
    haiku = {"provider": "anthropic", "model": "claude-haiku-4-5"}  # $1 in, $1.25 5m write, $2 1h write
    five = pricing.cost(**haiku, usage=Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000))
    hour = pricing.cost(**haiku, usage=Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000,
                                             cache_write_1h_tokens=400_000))
    assert (five, hour) == (pytest.approx(1.25), pytest.approx(0.6 * 1.25 + 0.4 * 2))
    override = PriceBook({"m": {"input_per_mtok": 1, "output_per_mtok": 1, "cache_write_per_mtok": 2,
                                "cache_write_1h_per_mtok": 3}})
    assert override.cost("x", "m", Usage(input_tokens=30, cache_write_tokens=20, cache_write_1h_tokens=5)) == (
        pytest.approx((10 + 15 * 2 + 5 * 3) / 1e6))


def test_unknown_model_costs_zero() -> None:
    assert PriceBook().cost("openai", "no-such-model-xyz", Usage(input_tokens=1000)) == 0.0


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-pro"), ("openai", "o3")],
)
def test_worst_case_bounds_every_usage_within_the_limits(provider: str, model: str) -> None:
    n, m = 300_000, 8_000  # large enough to hit long-context tiers
    worst = pricing.worst_case_cost(provider, model, n, m)
    for i, o, c, w, r, h in itertools.product((0, n // 2, n), (0, m), (0, n // 3), (0, n // 2), (0, m // 2),
                                              (False, True)):
        if c + w > i or r > o:
            continue
        usage = Usage(input_tokens=i, output_tokens=o, cached_input_tokens=c, cache_write_tokens=w,
                      cache_write_1h_tokens=w if h else 0, reasoning_tokens=r)
        assert pricing.cost(provider, model, usage) <= worst


def test_prompt_upper_bound_counts_bytes_not_characters() -> None:
    text = "ü€𝄞" * 100  # 2, 3 and 4 UTF-8 bytes per character
    req = ChatRequest(model="m", messages=[Message(role="user", content=text)])
    assert prompt_tokens_upper_bound(req) >= len(text.encode())
    with_image = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="x"), ImagePart(url="http://i/x.png")])],
    )
    assert prompt_tokens_upper_bound(with_image) >= 8_000


def test_cached_per_token_prices_equal_the_exact_calculation() -> None:
    """The fast path (plain per-token prices cached per model) must agree with genai-prices itself."""
    from genai_prices import data_snapshot

    ours = {"openai": "openai", "anthropic": "anthropic", "google": "gemini"}
    usage = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=200, reasoning_tokens=50,
                  cache_write_tokens=100, cache_write_1h_tokens=40)
    fast, checked = PriceBook(), 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models if provider.id in ours else ():
            name = ours[provider.id]
            if fast._fast(name, model.id) is None:
                continue
            exact = PriceBook()
            exact._linear[(name, model.id)] = None  # force genai-prices' own calculation
            assert fast.cost(name, model.id, usage) == pytest.approx(exact.cost(name, model.id, usage), rel=1e-12)
            checked += 1
    assert checked > 50
