"""Every spelling of the ``model`` field is classified by one parser."""

from __future__ import annotations

import pytest

from execution_platform.errors import NotFoundError
from execution_platform.model.address import parse_address, persona_address, persona_of, provider_of
from execution_platform.providers.registry import split_model


@pytest.mark.parametrize(
    ("text", "kind", "provider", "model", "persona"),
    [
        ("persona:coder", "persona", None, None, "coder"),
        ("fast", "deployment", None, None, None),
        ("smart", "group", None, None, None),
        ("openai/gpt-4o-mini", "provider_model", "openai", "gpt-4o-mini", None),
        ("openrouter/meta/llama-3", "provider_model", "openrouter", "meta/llama-3", None),
        ("local", "bare", "local", "default", None),
        ("local/smollm2", "provider_model", "local", "smollm2", None),
        ("gpt-4o", "unknown", None, None, None),
        ("openai/", "unknown", None, None, None),
    ],
)
def test_each_spelling_has_one_kind(text: str, kind: str, provider: str | None, model: str | None,
                                    persona: str | None) -> None:
    parsed = parse_address(text, deployments={"fast"}, groups={"smart"})
    assert (parsed.kind, parsed.provider, parsed.model, parsed.persona) == (kind, provider, model, persona)
    assert parsed.is_persona == (kind == "persona")


def test_a_deployment_name_wins_over_the_provider_model_reading() -> None:
    assert parse_address("openai/fast", deployments={"openai/fast"}).kind == "deployment"
    assert persona_address("coder") == "persona:coder"


def test_the_registry_splits_through_the_parser() -> None:
    assert split_model("local") == ("local", "default")
    assert split_model("anthropic/claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    with pytest.raises(NotFoundError, match="provider/model"):
        split_model("persona:coder")


@pytest.mark.parametrize("text", ["persona:coder", "persona:", "openai/gpt-4o-mini", "local", "gpt-4o", "fast"])
def test_the_persona_of_an_address_is_what_parsing_it_says(text: str) -> None:
    assert persona_of(text) == parse_address(text).persona


@pytest.mark.parametrize("text", ["persona:coder", "persona:a/b", "openai/gpt-4o-mini", "openrouter/meta/llama-3",
                                  "local", "local/smollm2", "gpt-4o", "openai/", "/gpt-4o"])
def test_the_provider_of_an_address_is_what_parsing_it_says(text: str) -> None:
    assert provider_of(text) == parse_address(text, bare=()).provider
