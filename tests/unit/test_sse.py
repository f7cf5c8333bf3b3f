"""The SSE parser must survive any chunking of a real event stream."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from execution_platform.codecs.sse import SSEParser, frame

STREAM = (
    b"event: message_start\r\ndata: {\"a\": 1}\r\n\r\n"
    b": keep-alive comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b"data: {\"b\": 2}\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [("message_start", '{"a": 1}'), (None, "line one\nline two"), (None, '{"b": 2}'), (None, "[DONE]")]


def parse_all(chunks: list[bytes]) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    out += parser.flush()
    return [(e.event, e.data) for e in out]


def test_whole_stream() -> None:
    assert parse_all([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), unique=True, max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    cuts = sorted(cuts)
    bounds = [0, *cuts, len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert parse_all(chunks) == EXPECTED


def test_unterminated_last_event_is_flushed() -> None:
    assert parse_all([b"data: tail"]) == [(None, "tail")]


def test_frame_round_trips() -> None:
    raw = frame({"x": [1, 2]}, event="delta") + frame("plain")
    assert parse_all([raw]) == [("delta", '{"x":[1,2]}'), (None, "plain")]
