"""Server-sent events: an incremental parser for upstream streams and a framer for served ones.

The parser follows the WHATWG event-stream rules that matter for LLM APIs: ``event:``/``data:``
fields, multi-line data joined with ``\\n``, comments (``:``) ignored, CRLF/LF/CR line endings, and
events split across arbitrary network chunk boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None

    def json(self) -> object:
        return orjson.loads(self.data)


class SSEParser:
    """Feed raw bytes, get complete events. Keeps partial lines between feeds."""

    __slots__ = ("_buffer", "_data", "_event", "_id")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        if b"\r" not in self._buffer:  # the usual case: split all complete lines at once
            lines = self._buffer.split(b"\n")
            self._buffer = lines.pop()
            found: list[SSEEvent] = []
            for raw in lines:
                parsed = self._line(raw.decode("utf-8", errors="replace"))
                if parsed is not None:
                    found.append(parsed)
            return found
        events: list[SSEEvent] = []
        # Normalise line endings only on complete lines; a trailing \r may be half of \r\n.
        while True:
            idx_n = self._buffer.find(b"\n")
            idx_r = self._buffer.find(b"\r")
            if idx_n == -1 and idx_r == -1:
                break
            if idx_r != -1 and (idx_n == -1 or idx_r < idx_n):
                if idx_r == len(self._buffer) - 1:
                    break  # wait: could be \r\n split across chunks
                end = idx_r
                skip = 2 if self._buffer[idx_r + 1 : idx_r + 2] == b"\n" else 1
            else:
                end, skip = idx_n, 1
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + skip :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        events: list[SSEEvent] = []
        if self._buffer:
            line = self._buffer.decode("utf-8", errors="replace").rstrip("\r")
            self._buffer = b""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id)
            self._data, self._event = [], None
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value
        return None


def frame(data: bytes | str | dict | list, event: str | None = None) -> bytes:
    """One SSE frame. Dicts/lists are JSON-encoded with orjson."""
    if isinstance(data, (dict, list)):
        payload = orjson.dumps(data)
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = data
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


KEEPALIVE = b": keep-alive\n\n"
