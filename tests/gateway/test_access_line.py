"""The access-log line written without a record when ``ep serve``'s handler is the only one to see it.

The shortcut must write exactly what the record's journey through ``logging`` writes, and must step
aside for anything else a record would meet: a handler or filter added by the user, the text format,
a disabled logger.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from execution_platform.gateway.logs import (
    JsonFormatter,
    TextFormatter,
    TurnFlushedHandler,
    sole_json_handler,
)
from execution_platform.gateway.metrics import Metrics
from execution_platform.gateway.observe import ACCESS_MESSAGE, Observer, access_log

FIELDS = {"request_id": "abc", "trace_id": None, "method": "POST", "route": "/v1/chat/completions",
          "status": 200, "latency_ms": 1.25, "cost_usd": 0.0001, "team": None}


# Set up inside each test, not in a fixture: pytest attaches its capturing handler to every logger
# that does not propagate when a test's call begins, which is the point of these tests.


def ours(monkeypatch: pytest.MonkeyPatch) -> tuple[logging.Logger, TurnFlushedHandler]:
    """A parent logger with ``ep serve``'s handler (as ``logs.configure`` installs it) and a child."""
    handler = TurnFlushedHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    parent = logging.getLogger(f"test.access_line.{id(handler)}")
    monkeypatch.setattr(parent, "handlers", [handler])
    monkeypatch.setattr(parent, "propagate", False)
    return logging.getLogger(parent.name + ".access"), handler


def test_the_line_is_what_the_formatter_writes_for_the_record() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("execution_platform.access", logging.INFO, __file__, 0, "request", None, None)
    record.ep = FIELDS
    assert formatter.info_line(record.created, record.name, "request", FIELDS) == formatter.format(record)
    assert "trace_id" not in json.loads(formatter.format(record))


def test_only_our_handler_alone_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    child, handler = ours(monkeypatch)
    assert sole_json_handler(child) is handler
    quiet = logging.StreamHandler(io.StringIO())
    quiet.setLevel(logging.WARNING)  # never sees an INFO record: changes nothing
    child.addHandler(quiet)
    assert sole_json_handler(child) is handler
    user = logging.StreamHandler(io.StringIO())
    child.addHandler(user)
    assert sole_json_handler(child) is None
    child.removeHandler(user)
    child.removeHandler(quiet)
    handler.addFilter(lambda record: True)
    assert sole_json_handler(child) is None
    handler.filters.clear()
    child.addFilter(lambda record: True)
    assert sole_json_handler(child) is None
    child.filters.clear()
    handler.setFormatter(TextFormatter())
    assert sole_json_handler(child) is None
    handler.setFormatter(JsonFormatter())
    child.disabled = True
    assert sole_json_handler(child) is None
    child.disabled = False
    assert sole_json_handler(child) is handler
    child.parent.propagate = True  # type: ignore[union-attr]  # the root's handlers would see it too
    logging.getLogger().addHandler(user)
    try:
        assert sole_json_handler(child) is None
    finally:
        logging.getLogger().removeHandler(user)
        child.parent.propagate = False  # type: ignore[union-attr]


def access_alone(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The access logger with ``ep serve``'s handler as its only one."""
    out = io.StringIO()
    handler = TurnFlushedHandler(out)
    handler.setFormatter(JsonFormatter())
    monkeypatch.setattr(access_log, "handlers", [handler])
    monkeypatch.setattr(access_log, "propagate", False)
    monkeypatch.setattr(access_log, "level", logging.INFO)
    access_log.manager._clear_cache()  # type: ignore[attr-defined]
    assert sole_json_handler(access_log) is handler
    return out


@pytest.fixture(autouse=True)
def _fresh_level_cache() -> Iterator[None]:
    yield
    access_log.manager._clear_cache()  # type: ignore[attr-defined]  # levels restored by monkeypatch


def _finish(observer: Observer, request_id: str) -> None:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/models", "headers": [],
                             "state": {"request_id": request_id}}
    observer.finish(scope, 200, 0.0, None)


def test_a_request_writes_the_same_line_with_or_without_a_user_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    out = access_alone(monkeypatch)
    observer = Observer(Metrics())
    _finish(observer, "first")  # ours alone: the line without a record
    user_out = io.StringIO()
    user = logging.StreamHandler(user_out)
    user.setFormatter(JsonFormatter())
    access_log.addHandler(user)
    try:
        _finish(observer, "second")  # a user's handler too: the record, to both
    finally:
        access_log.removeHandler(user)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert json.loads(user_out.getvalue()) == second
    assert first["msg"] == second["msg"] == ACCESS_MESSAGE
    assert {k: v for k, v in first.items() if k not in ("ts", "latency_ms", "request_id")} == {
        k: v for k, v in second.items() if k not in ("ts", "latency_ms", "request_id")}
    assert (first["request_id"], second["request_id"]) == ("first", "second")


def test_a_level_above_info_still_silences_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = access_alone(monkeypatch)
    monkeypatch.setattr(access_log, "level", logging.WARNING)
    access_log.manager._clear_cache()  # type: ignore[attr-defined]
    _finish(Observer(Metrics()), "quiet")
    assert out.getvalue() == ""
