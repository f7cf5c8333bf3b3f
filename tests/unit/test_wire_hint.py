"""The same-format hints riding on canonical objects: kept by copies, never serialized, never settable
from input, and nothing to pay for when a request or response is built."""

from __future__ import annotations

import copy
import pickle

import pytest
from pydantic import ValidationError

from execution_platform.model import ChatRequest, ChatResponse, Message, WireHint


def _request() -> ChatRequest:
    return ChatRequest(model="openai/gpt-4o-mini", messages=[Message(role="user", content="hi")])


def _response() -> ChatResponse:
    return ChatResponse(id="r1", model="gpt-4o-mini", message=Message(role="assistant", content="hello"))


def test_a_request_without_a_hint_has_none() -> None:
    assert _request().wire is None
    assert ChatRequest.model_construct(model="m", messages=[]).wire is None


def test_the_request_hint_survives_copies_and_stays_out_of_every_dump() -> None:
    chat = _request()
    plain = chat.model_dump()
    chat.set_wire(WireHint("openai", include_usage=False))
    for copied in (chat.model_copy(), chat.model_copy(deep=True), chat.model_copy(update={"model": "x"}),
                   copy.copy(chat), copy.deepcopy(chat), pickle.loads(pickle.dumps(chat))):
        assert copied.wire == WireHint("openai", include_usage=False)
    assert chat.model_dump() == plain
    assert "wire" not in chat.model_dump_json()
    chat.set_wire(None)
    assert chat.wire is None


def test_the_response_body_survives_copies_and_stays_out_of_every_dump() -> None:
    response = _response()
    assert response.wire_body is None
    plain = response.model_dump()
    response.set_wire_body(("openai", b'{"id":"r1"}'))
    assert response.model_copy().wire_body == ("openai", b'{"id":"r1"}')
    assert copy.deepcopy(response).wire_body == ("openai", b'{"id":"r1"}')
    assert response.model_dump() == plain
    assert "r1\\" not in response.model_dump_json()


@pytest.mark.parametrize("key", ["_wire", "wire"])
def test_no_input_sets_the_hint(key: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], key: {"format": "openai"}}
    with pytest.raises(ValidationError):
        ChatRequest.model_validate(body)
