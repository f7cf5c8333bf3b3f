"""Unknown request fields cannot change the model, the persona's prompt or cap, or the budget hold."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .params_support import MASTER, UPSTREAMS, body_for, crossed, dropped, error_of, post, start, text_of

__all__ = ["start"]

SCOPE_CONFIG = """
pricing:
  openai/gpt-4o-mini: {input_per_mtok: 0, output_per_mtok: 1000}
"""


def new_key(gw: Any, **fields: Any) -> str:
    r = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"}, json=fields)
    assert r.status_code == 201, r.text
    return r.json()["key"]


@pytest.fixture
def scoped(start: Any) -> Any:
    return start(SCOPE_CONFIG, master_key=MASTER)


# -- scope escape -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["model", "Model", "messages", "max_tokens", "maxOutputTokens", "system",
                                    "stream", "tools", "generationConfig"])
def test_native_provider_options_naming_a_reserved_field_is_a_400(scoped: Any, fake_openai: Any,
                                                                   option: str) -> None:
    key = new_key(scoped, models=["openai/gpt-4o-mini"])
    body = body_for("native", "openai/gpt-4o-mini", provider_options={option: "o1-pro"})
    r = post(scoped, "native", body, key)
    assert r.status_code == 400, r.text
    assert error_of("native", r)["param"] == f"provider_options.{option}"
    assert fake_openai.last_body is None  # the upstream was never called


ESCAPES: list[dict[str, Any]] = [
    {"Model": "o1-pro"},
    {"provider_options": {"model": "o1-pro"}},
    {"passthrough": {"format": "openai", "fields": {"model": "o1-pro"}}},
    {"generationConfig": {"model": "o1-pro"}},
    {"MODEL": "o1-pro", "model-": "o1-pro"},
]


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
@pytest.mark.parametrize("extra", ESCAPES)
def test_unknown_fields_cannot_change_the_model_on_wire_surfaces(
    scoped: Any, fake_openai: Any, surface: str, extra: dict[str, Any]
) -> None:
    key = new_key(scoped, models=["openai/gpt-4o-mini"])
    r = post(scoped, surface, body_for(surface, "openai/gpt-4o-mini", **extra), key)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        sent = crossed(fake_openai)
        assert sent["model"] == "gpt-4o-mini" and "o1-pro" not in text_of(sent)
        assert dropped(r)
    else:
        assert fake_openai.last_body is None


def test_scope_escape_is_a_400_naming_the_field_in_strict_mode(start: Any, fake_openai: Any) -> None:
    gw = start(SCOPE_CONFIG + "server: {strict_params: true}\n", master_key=MASTER)
    key = new_key(gw, models=["openai/gpt-4o-mini"])
    r = post(gw, "openai", body_for("openai", "openai/gpt-4o-mini", Model="o1-pro"), key)
    assert r.status_code == 400, r.text
    assert error_of("openai", r)["param"] == "Model" and fake_openai.last_body is None


# -- persona prompt and cap -------------------------------------------------------------------------------
PERSONA_CONFIG = """
personas:
""" + "".join(
    f"""  guarded_{name}:
    targets: [{target}]
    system_prompt: PERSONA-PROMPT
    params: {{max_tokens: 50}}
"""
    for name, target in UPSTREAMS.items()
)

# Every spelling of a system prompt or output cap a client might try, per surface. Spellings that are the
# surface's own legitimate field are decoded (caps then meet the persona's ceiling); the rest are dropped.
OVERRIDES: dict[str, dict[str, Any]] = {
    "openai": {
        "system": "EVIL-PROMPT", "systemInstruction": {"parts": [{"text": "EVIL-PROMPT"}]},
        "system_instruction": {"parts": [{"text": "EVIL-PROMPT"}]}, "instructions": "EVIL-PROMPT",
        "generationConfig": {"maxOutputTokens": 65000}, "max_completion_tokens": 65000,
        "max_output_tokens": 65000, "maxOutputTokens": 65000, "max_tokens": 65000,
    },
    "anthropic": {
        "systemInstruction": {"parts": [{"text": "EVIL-PROMPT"}]}, "instructions": "EVIL-PROMPT",
        "generationConfig": {"maxOutputTokens": 65000}, "max_completion_tokens": 65000,
        "max_output_tokens": 65000, "maxOutputTokens": 65000, "max_tokens": 65000,
    },
}


def _system_and_cap(upstream: str, sent: dict[str, Any]) -> tuple[str, int]:
    if upstream == "openai":
        first = sent["messages"][0]
        assert first["role"] == "system"
        return first["content"], sent["max_tokens"]
    if upstream == "anthropic":
        return sent["system"], sent["max_tokens"]
    return sent["systemInstruction"]["parts"][0]["text"], sent["generationConfig"]["maxOutputTokens"]


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
@pytest.mark.parametrize("surface", list(OVERRIDES))
@pytest.mark.parametrize("stream", [False, True])
def test_persona_prompt_and_cap_survive_every_spelling(
    start: Any, fake_servers: Any, surface: str, upstream: str, stream: bool
) -> None:
    gw = start(PERSONA_CONFIG)
    body = body_for(surface, f"persona:guarded_{upstream}", stream=stream, **OVERRIDES[surface])
    r = post(gw, surface, body)
    assert r.status_code == 200, r.text
    sent = crossed(fake_servers[upstream])
    system, cap = _system_and_cap(upstream, sent)
    assert (system, cap) == ("PERSONA-PROMPT", 50)
    assert "EVIL" not in text_of(sent) and "65000" not in text_of(sent)
    legit = {"max_tokens"} | ({"max_completion_tokens"} if surface == "openai" else set())
    assert dropped(r) >= set(OVERRIDES[surface]) - legit - {"generationConfig"} | {"generationConfig"}


@pytest.mark.parametrize("spelling", ["system", "instructions", "systemInstruction", "max_completion_tokens",
                                      "maxOutputTokens", "generationConfig"])
def test_native_cannot_reach_persona_fields_through_provider_options(start: Any, fake_openai: Any,
                                                                     spelling: str) -> None:
    gw = start(PERSONA_CONFIG)
    body = body_for("native", "persona:guarded_openai", provider_options={spelling: "EVIL-PROMPT"})
    r = post(gw, "native", body)
    assert r.status_code == 400 and error_of("native", r)["param"] == f"provider_options.{spelling}"
    assert fake_openai.last_body is None


# -- budget bypass ----------------------------------------------------------------------------------------
BYPASSES: list[tuple[str, dict[str, Any]]] = [
    ("openai", {"max_tokens": 16000}),
    ("openai", {"max_tokens": 1, "max_completion_tokens": 16000}),
    ("openai", {"max_tokens": 1, "generationConfig": {"maxOutputTokens": 16000}}),
    ("openai", {"max_tokens": 1, "max_output_tokens": 16000, "maxOutputTokens": 16000}),
    ("anthropic", {"max_tokens": 1, "generationConfig": {"maxOutputTokens": 16000}}),
    ("anthropic", {"max_tokens": 1, "max_completion_tokens": 16000}),
]


@pytest.mark.parametrize(("surface", "extra"), BYPASSES)
def test_no_cap_spelling_bypasses_the_budget_hold(scoped: Any, fake_openai: Any, surface: str,
                                                  extra: dict[str, Any]) -> None:
    # Output costs $0.001 a token and the key holds $0.002: one token fits, 16 000 never do.
    key = new_key(scoped, budget_usd=0.002, budget_period="total")
    r = post(scoped, surface, body_for(surface, "openai/gpt-4o-mini", **extra), key)
    if r.status_code == 402:
        assert fake_openai.last_body is None
        return
    assert r.status_code == 200, r.text
    sent = crossed(fake_openai)
    assert sent["max_tokens"] == 1 and "16000" not in text_of(sent)  # the hold's cap is the cap that crossed
    assert dropped(r)


def test_the_plain_oversized_cap_is_refused(scoped: Any, fake_openai: Any) -> None:
    key = new_key(scoped, budget_usd=0.002, budget_period="total")
    r = post(scoped, "openai", body_for("openai", "openai/gpt-4o-mini", max_tokens=16000), key)
    assert r.status_code == 402 and fake_openai.last_body is None


def test_hold_is_sized_from_the_cap_that_crosses_not_the_model_maximum(start: Any, fake_anthropic: Any) -> None:
    # Claude requires a cap; without one the adapter sends its default (4096), so the hold is for 4096
    # tokens ($4.10 here), not for the model's 64 000 ($64), and a $10 key can make the call.
    gw = start("pricing:\n  anthropic/claude-sonnet-4-5: {input_per_mtok: 0, output_per_mtok: 1000}\n",
               master_key=MASTER)
    key = new_key(gw, budget_usd=10, budget_period="total")
    r = post(gw, "openai", body_for("openai", "anthropic/claude-sonnet-4-5"), key)
    assert r.status_code == 200, r.text
    assert crossed(fake_anthropic)["max_tokens"] == 4096


@pytest.mark.parametrize(("surface", "spelling"), [("openai", "system"), ("openai", "generationConfig"),
                                                   ("openai", "max_output_tokens"), ("anthropic", "instructions"),
                                                   ("anthropic", "max_completion_tokens")])
def test_policy_spellings_are_400s_in_strict_mode(start: Any, fake_servers: Any, surface: str, spelling: str) -> None:
    gw = start(PERSONA_CONFIG + "server: {strict_params: true}\n")
    r = post(gw, surface, body_for(surface, "persona:guarded_openai", **{spelling: OVERRIDES[surface][spelling]}))
    assert r.status_code == 400, r.text
    error = error_of(surface, r)
    assert f"'{spelling}'" in error["message"] and error.get("param", spelling) == spelling
    assert fake_servers["openai"].last_body is None


def test_dropped_names_outside_ascii_are_percent_encoded_in_the_header() -> None:
    """A field name a client made up ends in a response header: it must be sendable (schemathesis found a
    500 when one held non-Latin-1 characters)."""
    from execution_platform.codecs.passthrough import ParamReport

    report = ParamReport(dropped=["top_k", "é\U000e0f86x", "a,b"])
    value = report.header()
    value.encode("latin-1")  # what the ASGI server does with a header value
    assert value == "top_k,%C3%A9%F3%A0%BE%86x,a%2Cb"
