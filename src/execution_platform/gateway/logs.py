"""Log formats for ``ep serve``: one JSON object per line (for collectors) or readable text (a terminal).

The access logger (``execution_platform.access``) emits one record per request whose ``ep`` attribute
holds the fields (ids, route, status, provider, model, tokens, cost, timings); both formats render
those fields only, so message content and secrets, which never reach that dict, never reach a log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

FORMATS = ("json", "text")
ENV = "EP_LOG_FORMAT"


def default_format() -> str:
    """JSON unless stdout is a terminal (``--log-format`` and ``EP_LOG_FORMAT`` override)."""
    return "text" if sys.stdout.isatty() else "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the timestamp's date and time are formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """``created`` as ``datetime.isoformat(timespec="milliseconds")`` in UTC would write it."""
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000 or created < 0:  # rounding reached the next second: the slow, exact way
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "ep", None)
        if fields:
            for key, value in fields.items():  # straight into the line: no filtered copy per record
                if value is not None:
                    line[key] = value
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return orjson.dumps(line, default=str).decode()

    def info_line(self, created: float, logger: str, msg: str, fields: dict[str, Any]) -> str:
        """What :meth:`format` writes for an INFO record of ``logger`` with message ``msg`` (no
        arguments), ``fields`` as its ``ep`` and no exception, without the record."""
        line: dict[str, Any] = {"ts": self.timestamp(created), "level": "info", "logger": logger, "msg": msg}
        for key, value in fields.items():
            if value is not None:
                line[key] = value
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "ep", None)
        text = super().format(record)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


class TurnFlushedHandler(logging.StreamHandler):
    """A stream handler that writes the lines of one turn of the event loop in one go.

    ``StreamHandler`` writes and flushes every record: one ``write`` system call per request line
    (also with ``PYTHONUNBUFFERED``, where even an unflushed write is one). Lines logged on an event
    loop are kept until the loop's current turn ends and then written together, so the requests that
    finished in one turn cost one write. Lines from any other thread, or when no loop runs, are
    written at once, after any still waiting, so the order of lines is kept.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_waiting()
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._waiting.append(line)
        if len(self._waiting) == 1:
            loop.call_soon(self._end_of_turn)

    def emit_line(self, line: str) -> None:
        """Write a line already formatted, as :meth:`emit` writes the line of a record (see
        :func:`sole_json_handler`)."""
        with self.lock:  # type: ignore[union-attr]
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._write_waiting()
                self._write_waiting_lines([line])
                return
            self._waiting.append(line)
            if len(self._waiting) == 1:
                loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_waiting()

    def _write_waiting(self) -> None:
        if not self._waiting:
            return
        lines, self._waiting = self._waiting, []
        self._write_waiting_lines(lines)

    def _write_waiting_lines(self, lines: list[str]) -> None:
        try:
            self.stream.write(self.terminator.join(lines) + self.terminator)
            super().flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "writing log lines failed"}))

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_waiting()
        super().flush()


def sole_json_handler(logger: logging.Logger, level: int = logging.INFO) -> TurnFlushedHandler | None:
    """The handler a record of ``logger`` at ``level`` would reach, when it is the only one, is ours
    (a :class:`TurnFlushedHandler` with a :class:`JsonFormatter`, as :func:`configure` installs it)
    and no filter of the logger or the handler could drop or change the record; else None.

    Then the record's whole journey (``Logger.handle``, ``callHandlers``, ``Handler.handle``,
    ``format``, ``getMessage``) ends in ``handler.emit_line(formatter.info_line(...))``, and a line
    logged once per request can be written that way without building the record. Anything else (a
    handler added by the user or a test, a filter, the text format, the logger disabled) and the
    caller must log the record as usual. Checked on every call, so a change to the logging set-up
    takes effect at once."""
    if logger.disabled or logger.filters:
        return None
    found: TurnFlushedHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level < handler.level:
                continue  # never sees the record
            if (found is not None or type(handler) is not TurnFlushedHandler or handler.filters
                    or type(handler.formatter) is not JsonFormatter):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def configure(fmt: str | None = None, level: int = logging.INFO) -> str:
    """Install one stdout handler with the chosen format on the ``execution_platform`` loggers."""
    chosen = fmt or os.environ.get(ENV) or default_format()
    if chosen not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    handler = TurnFlushedHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger("execution_platform")
    for old in list(root.handlers):
        if getattr(old, "_ep_handler", False):
            root.removeHandler(old)
    handler._ep_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    root.propagate = False
    # Neither format writes the process, thread or process name, and on this Python every record
    # would ask the kernel for the pid (a system call per log line).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    return chosen
