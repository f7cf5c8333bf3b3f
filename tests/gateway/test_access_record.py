"""The access log's records carry what ``logging.LogRecord`` would put in them."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from execution_platform.gateway.observe import access_record


def _constructed() -> logging.LogRecord:
    from execution_platform.gateway import observe

    return logging.LogRecord("execution_platform.access", logging.INFO, observe.__file__, 0, "request", None, None,
                             "finish")


@pytest.fixture
def quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``ep serve`` configures logging: records carry neither thread nor process."""
    monkeypatch.setattr(logging, "logThreads", False)
    monkeypatch.setattr(logging, "logProcesses", False)
    monkeypatch.setattr(logging, "logMultiprocessing", False)


def test_same_fields_as_a_constructed_record_but_its_own_time(quiet_logging: None) -> None:
    before = time.time()
    first = access_record()
    second = access_record()
    expected = vars(_constructed())
    timed = {"created", "msecs", "relativeCreated"}
    for record in (first, second):
        got = vars(record)
        assert set(got) == set(expected)
        assert {k: v for k, v in got.items() if k not in timed} == {k: v for k, v in expected.items() if k not in timed}
        assert before <= record.created <= time.time()
        assert record.msecs == int((record.created - int(record.created)) * 1000)
        assert record.getMessage() == "request"
    first.ep = {"status": 200}  # type: ignore[attr-defined]
    assert not hasattr(second, "ep")  # records share no state


def test_thread_and_process_are_looked_up_when_logging_wants_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "logThreads", True)
    record = access_record()
    assert record.thread == threading.get_ident()
    assert record.threadName == threading.current_thread().name
