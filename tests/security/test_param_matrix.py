"""Every sampling/output parameter of each client format × every upstream, against the strict fakes.

A parameter either arrives where the upstream's own API keeps it, or is named in
``x-ep-dropped-params`` (and, with ``server.strict_params``, refused with a 400 naming it). Nothing
unknown may cross: the fakes answer an unknown field with the real provider's 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from execution_platform.errors import UnsupportedParameterError
from tests.gateway.server import settings_for

from .params_support import UPSTREAMS, body_for, crossed, dropped, error_of, post, start

__all__ = ["start"]

DROP = "dropped"
# (surface, wire parameters) -> upstream -> (path in the upstream body, value) or DROP.
OPENAI_PARAMS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"temperature": 0.5}, {"openai": ("temperature", 0.5), "anthropic": ("temperature", 0.5),
                            "gemini": ("generationConfig.temperature", 0.5)}),
    ({"top_p": 0.5}, {"openai": ("top_p", 0.5), "anthropic": ("top_p", 0.5), "gemini": ("generationConfig.topP", 0.5)}),
    ({"max_tokens": 77}, {"openai": ("max_tokens", 77), "anthropic": ("max_tokens", 77),
                          "gemini": ("generationConfig.maxOutputTokens", 77)}),
    ({"max_completion_tokens": 77}, {"openai": ("max_tokens", 77), "anthropic": ("max_tokens", 77),
                                     "gemini": ("generationConfig.maxOutputTokens", 77)}),
    ({"stop": ["END"]}, {"openai": ("stop", ["END"]), "anthropic": ("stop_sequences", ["END"]),
                         "gemini": ("generationConfig.stopSequences", ["END"])}),
    ({"seed": 7}, {"openai": ("seed", 7), "anthropic": DROP, "gemini": ("generationConfig.seed", 7)}),
    ({"frequency_penalty": 0.5}, {"openai": ("frequency_penalty", 0.5), "anthropic": DROP,
                                  "gemini": ("generationConfig.frequencyPenalty", 0.5)}),
    ({"presence_penalty": -0.5}, {"openai": ("presence_penalty", -0.5), "anthropic": DROP,
                                  "gemini": ("generationConfig.presencePenalty", -0.5)}),
    ({"logprobs": True}, {"openai": ("logprobs", True), "anthropic": DROP, "gemini": DROP}),
    ({"top_logprobs": 2}, {"openai": ("top_logprobs", 2), "anthropic": DROP, "gemini": DROP}),
    ({"store": True}, {"openai": ("store", True), "anthropic": DROP, "gemini": DROP}),
    ({"metadata": {"k": "v"}}, {"openai": ("metadata", {"k": "v"}), "anthropic": DROP, "gemini": DROP}),
    ({"logit_bias": {"50256": -100}}, {"openai": ("logit_bias", {"50256": -100}), "anthropic": DROP, "gemini": DROP}),
    ({"service_tier": "auto"}, {"openai": ("service_tier", "auto"), "anthropic": DROP, "gemini": DROP}),
    ({"user": "u1"}, {"openai": ("user", "u1"), "anthropic": ("metadata.user_id", "u1"), "gemini": DROP}),
]
ANTHROPIC_PARAMS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"temperature": 0.5}, {"openai": ("temperature", 0.5), "anthropic": ("temperature", 0.5),
                            "gemini": ("generationConfig.temperature", 0.5)}),
    ({"top_p": 0.5}, {"openai": ("top_p", 0.5), "anthropic": ("top_p", 0.5), "gemini": ("generationConfig.topP", 0.5)}),
    ({"top_k": 5}, {"openai": DROP, "anthropic": ("top_k", 5), "gemini": ("generationConfig.topK", 5)}),
    ({"max_tokens": 77}, {"openai": ("max_tokens", 77), "anthropic": ("max_tokens", 77),
                          "gemini": ("generationConfig.maxOutputTokens", 77)}),
    ({"stop_sequences": ["END"]}, {"openai": ("stop", ["END"]), "anthropic": ("stop_sequences", ["END"]),
                                   "gemini": ("generationConfig.stopSequences", ["END"])}),
    ({"metadata": {"user_id": "u1"}}, {"openai": ("user", "u1"), "anthropic": ("metadata.user_id", "u1"),
                                       "gemini": DROP}),
    ({"service_tier": "auto"}, {"openai": DROP, "anthropic": ("service_tier", "auto"), "gemini": DROP}),
]
GEMINI_PARAMS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"temperature": 0.5}, {"openai": ("temperature", 0.5), "anthropic": ("temperature", 0.5),
                            "gemini": ("generationConfig.temperature", 0.5)}),
    ({"topP": 0.5}, {"openai": ("top_p", 0.5), "anthropic": ("top_p", 0.5), "gemini": ("generationConfig.topP", 0.5)}),
    ({"topK": 5}, {"openai": DROP, "anthropic": ("top_k", 5), "gemini": ("generationConfig.topK", 5)}),
    ({"maxOutputTokens": 77}, {"openai": ("max_tokens", 77), "anthropic": ("max_tokens", 77),
                               "gemini": ("generationConfig.maxOutputTokens", 77)}),
    ({"stopSequences": ["END"]}, {"openai": ("stop", ["END"]), "anthropic": ("stop_sequences", ["END"]),
                                  "gemini": ("generationConfig.stopSequences", ["END"])}),
    ({"seed": 7}, {"openai": ("seed", 7), "anthropic": DROP, "gemini": ("generationConfig.seed", 7)}),
    ({"frequencyPenalty": 0.5}, {"openai": ("frequency_penalty", 0.5), "anthropic": DROP,
                                 "gemini": ("generationConfig.frequencyPenalty", 0.5)}),
    ({"presencePenalty": 0.5}, {"openai": ("presence_penalty", 0.5), "anthropic": DROP,
                                "gemini": ("generationConfig.presencePenalty", 0.5)}),
    ({"responseLogprobs": True}, {"openai": DROP, "anthropic": DROP,
                                  "gemini": ("generationConfig.responseLogprobs", True)}),
    ({"candidateCount": 1}, {"openai": None, "anthropic": None, "gemini": None}),  # the default: nothing to send
]


def _at(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        assert isinstance(value, dict) and part in value, (path, body)
        value = value[part]
    return value


def _check(upstream_body: dict[str, Any], expected: Any, dropped_names: set[str], wire_names: list[str]) -> None:
    if expected == DROP:
        assert dropped_names >= set(wire_names), dropped_names
        return
    assert not dropped_names, dropped_names
    if expected is not None:
        path, value = expected
        assert _at(upstream_body, path) == value


def _cases(surface: str, params: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
    return [pytest.param(surface, wire, upstream, expected[upstream], id=f"{surface}:{next(iter(wire))}->{upstream}")
            for wire, expected in params for upstream in UPSTREAMS]


@pytest.fixture(scope="module")
def lenient(fake_servers: Any) -> Any:
    from tests.gateway.server import start_gateway

    server = start_gateway({name: fake_servers[name] for name in UPSTREAMS})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict(fake_servers: Any) -> Any:
    from execution_platform.config.file import parse_config
    from tests.gateway.server import start_gateway

    config = parse_config("server: {strict_params: true}\n")
    server = start_gateway({name: fake_servers[name] for name in UPSTREAMS}, config=config)
    yield server
    server.stop()


@pytest.mark.parametrize(("surface", "wire", "upstream", "expected"),
                         _cases("openai", OPENAI_PARAMS) + _cases("anthropic", ANTHROPIC_PARAMS))
def test_wire_parameter_lands_in_place_or_is_reported(lenient: Any, fake_servers: Any, surface: str,
                                                      wire: dict[str, Any], upstream: str, expected: Any) -> None:
    fake_servers[upstream].reset()
    r = post(lenient, surface, body_for(surface, UPSTREAMS[upstream], **wire))
    assert r.status_code == 200, r.text  # a strict fake's 400 would surface here
    _check(crossed(fake_servers[upstream]), expected, dropped(r), _wire_names(wire))


def _wire_names(wire: dict[str, Any]) -> list[str]:
    return [f"{name}.user_id" if name == "metadata" and "user_id" in value else name for name, value in wire.items()]


@pytest.mark.parametrize(("surface", "wire", "upstream"), [
    (surface, wire, upstream)
    for surface, table in (("openai", OPENAI_PARAMS), ("anthropic", ANTHROPIC_PARAMS))
    for wire, expected in table for upstream in UPSTREAMS if expected[upstream] == DROP
])
def test_strict_params_refuses_what_would_be_dropped(strict: Any, fake_servers: Any, surface: str,
                                                     wire: dict[str, Any], upstream: str) -> None:
    fake_servers[upstream].reset()
    r = post(strict, surface, body_for(surface, UPSTREAMS[upstream], **wire))
    assert r.status_code == 400, r.text
    error = error_of(surface, r)
    name = _wire_names(wire)[0]
    assert f"'{name}'" in error["message"]  # Anthropic's error shape has no param; the message names it
    assert error.get("param", name) == name
    assert fake_servers[upstream].last_body is None


def test_dropped_params_header_on_streams_too(lenient: Any, fake_servers: Any) -> None:
    r = post(lenient, "openai", body_for("openai", UPSTREAMS["anthropic"], stream=True, logprobs=True, seed=3))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert dropped(r) == {"logprobs", "seed"}


@pytest.mark.parametrize(("surface", "wire", "upstream", "expected"), _cases("gemini", GEMINI_PARAMS))
def test_gemini_client_parameters_to_every_upstream(fake_servers: Any, surface: str, wire: dict[str, Any],
                                                    upstream: str, expected: Any) -> None:
    """Gemini-format requests (decoded by the Gemini codec) sent through the client to each fake."""
    from execution_platform.client import Client
    from execution_platform.codecs import gemini as gemini_codec
    from execution_platform.codecs.passthrough import open_report

    fake_servers[upstream].reset()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": dict(wire)}

    async def call(strict: bool) -> list[str]:
        report = open_report(strict=strict, names=gemini_codec.PARAM_NAMES)
        client = Client(settings_for({name: fake_servers[name] for name in UPSTREAMS}))
        try:
            await client.send(gemini_codec.decode_request(body, model=UPSTREAMS[upstream]))
        finally:
            await client.aclose()
        return report.dropped

    names = asyncio.run(call(strict=False))
    wire_names = [f"generationConfig.{n}" for n in wire]
    _check(crossed(fake_servers[upstream]), expected, set(names), wire_names)
    if expected == DROP:
        with pytest.raises(UnsupportedParameterError) as info:
            asyncio.run(call(strict=True))
        assert info.value.param == wire_names[0]


@pytest.mark.parametrize(("wire", "upstream", "expected"), [
    ({"top_k": 5}, "openai", DROP),
    ({"top_k": 5}, "gemini", ("generationConfig.topK", 5)),
    ({"frequency_penalty": 0.5}, "anthropic", DROP),
    ({"seed": 7}, "gemini", ("generationConfig.seed", 7)),
    ({"presence_penalty": 0.5}, "openai", ("presence_penalty", 0.5)),
])
@pytest.mark.parametrize("stream", [False, True])
def test_native_canonical_fields_map_or_are_reported(lenient: Any, fake_servers: Any, wire: dict[str, Any],
                                                     upstream: str, expected: Any, stream: bool) -> None:
    fake_servers[upstream].reset()
    r = post(lenient, "native", body_for("native", UPSTREAMS[upstream], stream=stream, **wire))
    assert r.status_code == 200, r.text
    _check(crossed(fake_servers[upstream]), expected, dropped(r), list(wire))
