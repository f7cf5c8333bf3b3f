"""The hot routes' own request and response objects behave as the starlette ones they stand in for."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.responses import Response

from execution_platform.gateway.calls import model_head, model_headers
from execution_platform.gateway.fastpath import HotRequest, RequestHeaders
from execution_platform.gateway.responses import JSONBytes
from execution_platform.model import Attempt, ChatResponse, Message

RAW = [(b"host", b"x"), (b"x-ep-team", b"first"), (b"x-ep-team", b"second"), (b"content-length", b"2")]


@pytest.mark.parametrize("name", ["x-ep-team", "X-EP-Team", "Content-Length", "x-ep-persona", "session_id"])
def test_request_headers_answer_like_starlettes(name: str) -> None:
    assert RequestHeaders(raw=list(RAW)).get(name) == Headers(raw=list(RAW)).get(name)
    assert RequestHeaders(raw=list(RAW)).get(name, "dflt") == Headers(raw=list(RAW)).get(name, "dflt")


def test_a_hot_request_reads_its_headers_with_them() -> None:
    request = HotRequest({"type": "http", "headers": list(RAW)}, None, None)
    assert isinstance(request.headers, RequestHeaders)
    assert request.headers.get("x-ep-team") == "first" and request.headers["content-length"] == "2"


async def _messages(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await response({"type": "http"}, None, send)
    return sent


@pytest.mark.parametrize("status", [200, 201, 429])
async def test_json_bytes_sends_what_starlette_would(status: int) -> None:
    headers = {"x-ep-provider": "openai", "X-RateLimit-Limit-Requests": "10"}
    ours = await _messages(JSONBytes(b'{"a":1}', headers, status))
    theirs = await _messages(Response(b'{"a":1}', status_code=status, media_type="application/json", headers=headers))
    assert ours == theirs


@pytest.mark.parametrize("cost", [None, 0.0, 0.00012, 1.5])
async def test_an_answers_head_as_byte_pairs_is_what_its_header_dict_sends(cost: float | None) -> None:
    """``model_head`` + ``JSONBytes(head=...)``: the bytes of ``JSONBytes`` given the merged header dict."""
    response = ChatResponse(
        id="r", model="gpt-4o-mini", provider="openai", message=Message(role="assistant", content="hi"),
        cost_usd=cost, attempts=[Attempt(provider="openai", model="gpt-4o-mini")],
        rate_limits={"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "9"},
    )
    extra = {"x-ep-dropped-params": "top_k"}
    ours = await _messages(JSONBytes(b'{"a":1}', head=model_head(response, extra)))
    theirs = await _messages(JSONBytes(b'{"a":1}', {**model_headers(response), **extra}))
    assert ours == theirs
