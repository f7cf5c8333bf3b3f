"""Pass-through fields: same format only, add-only, never a reserved name, every drop reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from execution_platform.codecs import anthropic_messages, gemini, openai_chat
from execution_platform.codecs.passthrough import (
    check_provider_options,
    close_report,
    open_report,
    split_unknown,
)
from execution_platform.errors import InvalidRequestError, UnsupportedParameterError
from execution_platform.model import ChatRequest, Message, Passthrough


@pytest.fixture(autouse=True)
def _closed_report() -> Iterator[None]:
    """Tests share one context: a report left open (strict, say) would leak into the next test."""
    yield
    close_report()


def _req(**fields: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content="hi")], **fields)  # type: ignore[arg-type]


def test_same_format_fields_are_added_but_never_replace_what_the_encoder_set() -> None:
    report = open_report()
    carried = Passthrough(format="openai", fields={"logprobs": True, "temperature": 1.9, "max_tokens": 9})
    body = openai_chat.encode_request(_req(temperature=0.1, max_tokens=5, passthrough=carried))
    assert (body["logprobs"], body["temperature"], body["max_tokens"]) == (True, 0.1, 5)
    assert report.dropped == ["temperature", "max_tokens"]


def test_other_format_fields_are_dropped_and_named() -> None:
    report = open_report()
    carried = Passthrough(format="openai", fields={"logprobs": True, "store": True})
    body = anthropic_messages.encode_request(_req(passthrough=carried))
    assert "logprobs" not in body and "store" not in body
    assert report.dropped == ["logprobs", "store"]


def test_gemini_generation_config_extras_are_merged_without_the_cap() -> None:
    report = open_report()
    carried = Passthrough(format="gemini", fields={"generationConfig": {"responseLogprobs": True,
                                                                        "maxOutputTokens": 65000}})
    body = gemini.encode_request(_req(max_tokens=5, passthrough=carried))
    assert body["generationConfig"]["maxOutputTokens"] == 5 and body["generationConfig"]["responseLogprobs"]
    assert report.dropped == ["generationConfig.maxOutputTokens"]


def test_nested_data_is_not_policy() -> None:
    open_report()
    carried = Passthrough(format="openai", fields={"metadata": {"model": "tag"}})
    assert openai_chat.encode_request(_req(passthrough=carried))["metadata"] == {"model": "tag"}


def test_strict_report_raises_naming_the_parameter() -> None:
    open_report(strict=True, names={"top_k": "generationConfig.topK"})
    with pytest.raises(UnsupportedParameterError) as info:
        openai_chat.encode_request(_req(top_k=3))
    assert info.value.param == "generationConfig.topK"


def test_decoders_drop_foreign_policy_names() -> None:
    report = open_report()
    assert split_unknown({"system": "x", "maxOutputTokens": 9, "logprobs": True}, "openai") == Passthrough(
        format="openai", fields={"logprobs": True})
    assert report.dropped == ["system", "maxOutputTokens"]


@pytest.mark.parametrize("name", ["model", "max_completion_tokens", "systemInstruction", "stream_options"])
def test_provider_options_may_not_name_owned_fields(name: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_provider_options({name: 1})
    assert info.value.param == f"provider_options.{name}"
    check_provider_options({"safetySettings": []})


def test_claude_agent_reports_wire_fields_it_cannot_take() -> None:
    from execution_platform.providers._claude_agent_request import check_supported

    report = open_report()
    check_supported(_req(top_k=3, passthrough=Passthrough(format="openai", fields={"logprobs": True})))
    assert report.dropped == ["top_k", "logprobs"]
    with pytest.raises(UnsupportedParameterError, match="web_search"):
        check_supported(_req(passthrough=Passthrough(format="anthropic", tools=[{"type": "web_search_1",
                                                                                 "name": "web_search"}])))


def test_config_provider_options_may_not_name_owned_fields() -> None:
    from execution_platform.config.file import parse_config

    persona = "personas:\n  a:\n    targets: [openai/gpt-4o-mini]\n    params: {provider_options: {%s: 5}}\n"
    with pytest.raises(Exception, match=r"provider_options\.max_completion_tokens"):
        parse_config(persona % "max_completion_tokens")
    assert parse_config(persona % "logprobs").personas["a"].params.provider_options == {"logprobs": 5}


def test_gemini_client_can_still_turn_thoughts_off() -> None:
    report = open_report()
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 128}}}
    wire = gemini.encode_request(gemini.decode_request(body, model="gemini-2.5-flash"))
    assert wire["generationConfig"]["thinkingConfig"] == {"includeThoughts": False, "thinkingBudget": 128}
    assert report.dropped == []
