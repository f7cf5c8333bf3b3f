"""Every wire codec meets the protocols of ``codecs/base.py``, model argument included."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import pytest

from execution_platform.codecs import anthropic_messages, base, gemini, openai_chat, openai_responses

CODECS = [openai_chat, anthropic_messages, gemini, openai_responses]

# A minimal valid body per codec, without a model: the route supplies it.
BODIES: dict[str, dict[str, Any]] = {
    "openai_chat": {"messages": [{"role": "user", "content": "hi"}]},
    "anthropic_messages": {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    "openai_responses": {"input": "hi"},
}


def _members(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(protocol, name))
        for name in dir(protocol)
        if not name.startswith("_") and callable(getattr(protocol, name))
    }


def _binds(function: Any, expected: inspect.Signature, *, module: bool = False) -> None:
    """``function`` accepts every call the protocol allows: positional-only arguments by position,
    the others by position and by their name. A module function meets a protocol method without
    its ``self``."""
    params = [p for p in expected.parameters.values() if not (module and p.name == "self")]
    positional = [object() for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_position = [object() for p in params if p.kind is p.POSITIONAL_ONLY]
    by_name = {p.name: object() for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    keyword_only = {p.name: object() for p in params if p.kind is p.KEYWORD_ONLY}
    signature = inspect.signature(function)
    signature.bind(*positional, **keyword_only)
    signature.bind(*positional)  # keyword-only arguments stay optional
    signature.bind(*by_position, **by_name)


def _name(codec: ModuleType) -> str:
    return codec.__name__.rpartition(".")[2]


@pytest.mark.parametrize("codec", CODECS, ids=_name)
def test_module_functions_match_the_codec_protocol(codec: ModuleType) -> None:
    for name, signature in _members(base.Codec).items():
        _binds(getattr(codec, name), signature, module=True)


@pytest.mark.parametrize("codec", CODECS, ids=_name)
def test_stream_classes_match_their_protocols(codec: ModuleType) -> None:
    for cls_name in ("StreamDecoder", "StreamEncoder"):
        for name, signature in _members(getattr(base, cls_name)).items():
            _binds(getattr(getattr(codec, cls_name), name), signature)


@pytest.mark.parametrize("codec", CODECS, ids=_name)
def test_decode_request_takes_the_model_from_the_route(codec: ModuleType) -> None:
    body = BODIES[_name(codec)]
    assert codec.decode_request(body, model="route-model").model == "route-model"
    assert codec.decode_request({**body, "model": "body-model"}).model == "body-model"
    assert codec.decode_request({**body, "model": "body-model"}, model="route-model").model == "route-model"
