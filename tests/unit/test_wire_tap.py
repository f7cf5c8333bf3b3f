"""The wire taps forward exactly the frames and report exactly the events the decoders imply.

A tap reads a stream's plain text frames without parsing them once it has learned their shape; these
properties pin what it must give whatever the texts hold (quotes, escapes, control characters,
non-ASCII), however the bytes are split, and when a later frame breaks the learned shape.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution_platform.codecs import anthropic_messages, openai_chat
from execution_platform.codecs.sse import SSEParser
from execution_platform.codecs.wire import WireTapBase
from execution_platform.errors import EPError
from execution_platform.model import StreamEvent, TextDelta, WireFrame

TEXTS = st.lists(
    st.text(alphabet=st.sampled_from(['a', 'Z', ' ', '"', '\\', '\n', '\t', '\x01', '/', 'é', '日', '😀', '\u2028']),
            max_size=6),
    min_size=1, max_size=12,
)
CUTS = st.lists(st.integers(min_value=0, max_value=4000), max_size=8)


def _pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(raw)) for c in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


def _tapped(tap: WireTapBase, pieces: list[bytes]) -> list[StreamEvent]:
    return [e for piece in pieces for e in tap.feed_bytes(piece)] + tap.flush() + tap.finish()


def _decoded(decoder: Any, raw: bytes) -> list[StreamEvent]:
    parser = SSEParser()
    out = [e for sse in [*parser.feed(raw), *parser.flush()] for e in decoder.feed(sse)]
    return out + decoder.finish()


def _split(events: list[StreamEvent]) -> tuple[bytes, str, int, list[StreamEvent]]:
    frames = [e for e in events if isinstance(e, WireFrame)]
    others = [e for e in events if not isinstance(e, WireFrame)]
    return (b"".join(f.data for f in frames), "".join(f.text for f in frames), sum(f.pieces for f in frames), others)


# -- OpenAI --------------------------------------------------------------------------------------------
def _openai_frames(texts: list[str], *, usage_null: bool, vary: str = "") -> list[dict[str, Any]]:
    """OpenAI's chunks for ``texts``; ``vary`` adds a field that changes per chunk after the text
    (``"length"``: a string of changing length, ``"digit"``: a number of one digit)."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    extra: dict[str, Any] = {"usage": None} if usage_null else {}

    def chunk(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        tag = {"obfuscation": "x" * (i % 3)} if vary == "length" else {"n": i % 10} if vary == "digit" else {}
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra, **tag}

    frames = [chunk(0, {"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk(i + 1, {"content": t}) for i, t in enumerate(texts)]
    frames.append(chunk(0, {}, "stop"))
    frames.append({**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
    return frames


def _openai_expected(frames: list[dict[str, Any]]) -> bytes:
    """What the client must get: every chunk as sent, less ``"usage":null``; ``[DONE]`` is the server's."""
    out = []
    for f in frames:
        raw = orjson.dumps(f)
        if "usage" in f and f["usage"] is None:
            raw = raw.replace(b',"usage":null', b"", 1)
        out.append(b"data: " + raw + b"\n\n")
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(TEXTS, CUTS, st.booleans(), st.sampled_from(["", "length", "digit"]))
def test_openai_tap_forwards_every_frame_and_reports_the_decoders_events(
        texts: list[str], cuts: list[int], usage_null: bool, vary: str) -> None:
    frames = _openai_frames(texts, usage_null=usage_null, vary=vary)
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames) + b"data: [DONE]\n\n"
    data, text, pieces, others = _split(_tapped(openai_chat.WireTap("m"), _pieces(raw, cuts)))
    decoded = _decoded(openai_chat.StreamDecoder("m"), raw)
    assert data == _openai_expected(frames)
    assert text == "".join(texts)
    assert pieces == sum(1 for t in texts if t)  # one token event per text delta, as the decoder gives
    assert others == [e for e in decoded if not isinstance(e, TextDelta)]


def test_an_error_after_plain_frames_raises_as_decoded() -> None:
    frames = _openai_frames(["one", "two", "three"], usage_null=True)[:4]
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    error = b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    tap = openai_chat.WireTap("m")
    tap.feed_bytes(raw)
    with pytest.raises(EPError) as tapped:
        tap.feed_bytes(error)
    with pytest.raises(EPError) as decoded:
        _decoded(openai_chat.StreamDecoder("m"), raw + error)
    assert type(tapped.value) is type(decoded.value)
    assert str(tapped.value) == str(decoded.value)


def test_a_frame_that_is_not_utf8_fails_as_malformed() -> None:
    frames = _openai_frames(["one", "two"], usage_null=True)[:3]
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    bad = b"data: " + orjson.dumps(frames[2]).replace(b'"two"', b'"t\xffo"') + b"\n\n"
    tap = openai_chat.WireTap("m")
    tap.feed_bytes(raw)
    with pytest.raises(ValueError):
        tap.feed_bytes(bad)
    with pytest.raises(ValueError):
        orjson.loads(bad[6:])  # what the frame-by-frame read raises for it


def test_the_usage_only_chunk_stays_out_when_not_asked_for() -> None:
    frames = _openai_frames(["a", "b"], usage_null=True)
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames) + b"data: [DONE]\n\n"
    data, _, _, others = _split(_tapped(openai_chat.WireTap("m", include_usage=False), [raw]))
    assert data == _openai_expected(frames[:-1])
    assert [e.type for e in others] == ["start", "usage", "finish"]


# -- Anthropic -----------------------------------------------------------------------------------------
def _sse(event: str, body: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def _anthropic_frames(texts: list[str]) -> list[bytes]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    frames = [_sse("message_start", {"type": "message_start", "message": message}), _sse("ping", {"type": "ping"}),
              _sse("content_block_start",
                   {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
    frames += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": t}}) for t in texts]
    frames += [_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                      "usage": {"output_tokens": 4}}),
               _sse("message_stop", {"type": "message_stop"})]
    return frames


@settings(max_examples=150, deadline=None)
@given(TEXTS, CUTS)
def test_anthropic_tap_forwards_every_frame_and_reports_the_decoders_events(texts: list[str], cuts: list[int]) -> None:
    frames = _anthropic_frames(texts)
    raw = b"".join(frames)
    data, text, pieces, others = _split(_tapped(anthropic_messages.WireTap("m"), _pieces(raw, cuts)))
    decoded = _decoded(anthropic_messages.StreamDecoder("m"), raw)
    kept = [f for f, t in zip(frames[3:], texts, strict=False) if t]  # empty deltas are dropped
    assert data == b"".join([*frames[:3], *kept, *frames[3 + len(texts):]])
    assert text == "".join(texts)
    assert pieces == sum(1 for t in texts if t)
    assert others == [e for e in decoded if not isinstance(e, TextDelta)]
