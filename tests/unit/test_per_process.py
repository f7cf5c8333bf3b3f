"""What the gateway now prepares once per process instead of per request gives the same results."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from execution_platform.gateway.ids import request_id
from execution_platform.gateway.logs import JsonFormatter


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_log_timestamps_match_datetime_isoformat(created: float) -> None:
    formatter = JsonFormatter()
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert formatter.timestamp(created) == expected
    assert formatter.timestamp(created) == expected  # and again from the cached second


def test_log_timestamps_within_one_second_share_the_cached_part() -> None:
    formatter = JsonFormatter()
    base = 1_796_011_930.0
    for step in range(0, 1000, 7):
        created = base + step / 1000 + 0.0004
        assert formatter.timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def test_request_ids_are_unique_32_hex_characters() -> None:
    ids = [request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
