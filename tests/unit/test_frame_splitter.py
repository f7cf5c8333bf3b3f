"""The fast path's byte-level SSE framing cuts the same frames as the general parser, however split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from execution_platform.codecs.sse import SSEParser
from execution_platform.codecs.wire import FrameSplitter

STREAMS = [
    b'data: {"a":1}\n\ndata: {"b":"x\\ny"}\n\ndata: [DONE]\n\n',
    b'event: message_start\ndata: {"type":"message_start"}\n\nevent: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"h\xc3\xa9"}}\n\n',
    b': comment\n\ndata: one\ndata: two\n\nid: 7\ndata: three\n\ndata:no-space\n\n\n\ndata: last',
    b'data: {"a":1}\r\n\r\nevent: x\r\ndata: 2\r\n\r\ndata: 3\n\n',
]


def _parsed(raw: bytes) -> list[tuple[str | None, bytes]]:
    parser = SSEParser()
    events = [*parser.feed(raw), *parser.flush()]
    return [(e.event, e.data.encode()) for e in events]


@given(st.sampled_from(STREAMS), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_frames_match_the_general_parser_at_any_split(raw: bytes, cuts: list[int]) -> None:
    splitter = FrameSplitter()
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    got = [frame for piece in pieces for frame in splitter.feed(piece)] + splitter.flush()
    assert got == _parsed(raw)
