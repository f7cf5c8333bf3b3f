"""What the codecs' wire taps share: cutting raw SSE into frames, placing and joining forwarded frames."""

from __future__ import annotations

from ..model import StartEvent, StreamEvent, WireFrame
from .sse import SSEEvent, SSEParser


def after_start(frame: WireFrame, events: list[StreamEvent]) -> list[StreamEvent]:
    """``frame`` placed after a leading ``StartEvent`` and before the rest.

    The start comes first so the server reads the serving provider and model from a stream's first
    event, as on the canonical path; everything else the frame implies follows it.
    """
    if events and isinstance(events[0], StartEvent):
        return [events[0], frame, *events[1:]]
    return [frame, *events]


def coalesce(events: list[StreamEvent]) -> list[StreamEvent]:
    """Adjacent frames joined into one: what one upstream read brought crosses the stack as one event.

    Every layer between the adapter and the server (metering, routing, the client) handles each
    event; forwarded bytes need no finer grain than the reads they came in.
    """
    if len(events) < 2:
        return events
    out: list[StreamEvent] = []
    run: list[WireFrame] = []
    for event in events:
        if isinstance(event, WireFrame):
            run.append(event)
            continue
        if run:
            out.append(_joined(run))
            run = []
        out.append(event)
    if run:
        out.append(_joined(run))
    return out


def _joined(frames: list[WireFrame]) -> WireFrame:
    if len(frames) == 1:
        return frames[0]
    return WireFrame(format=frames[0].format, data=b"".join([f.data for f in frames]),
                     text="".join([f.text for f in frames]), pieces=sum([f.pieces for f in frames]))


class FrameSplitter:
    """Raw SSE bytes → ``(event name, data bytes)`` per complete frame, without decoding any text.

    Upstreams send frames as ``data: …`` or ``event: …\\ndata: …`` lines ending in ``\\n``; those are
    cut straight out of the bytes. Anything else (comments, ``id:``, multi-line data, ``\\r`` line
    ends) goes through :class:`SSEParser`, which then takes over for good once a ``\\r`` is seen.
    """

    __slots__ = ("_buffer", "_parser", "_slow")

    def __init__(self) -> None:
        self._buffer = b""
        self._parser = SSEParser()
        self._slow = False

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        if self._slow:
            return _pairs(self._parser.feed(chunk))
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            self._slow, self._buffer = True, b""
            return _pairs(self._parser.feed(buffer))
        frames = buffer.split(b"\n\n")
        self._buffer = frames.pop()
        out: list[tuple[str | None, bytes]] = []
        for frame in frames:
            if frame.startswith(b"data: ") and b"\n" not in frame:
                out.append((None, frame[6:]))
                continue
            if frame.startswith(b"event: "):
                newline = frame.find(b"\n")
                if frame.startswith(b"data: ", newline + 1) and frame.find(b"\n", newline + 1) == -1:
                    out.append((frame[7:newline].decode(), frame[newline + 7 :]))
                    continue
            if frame:
                out.extend(_pairs(self._parser.feed(frame + b"\n\n")))
        return out

    def flush(self) -> list[tuple[str | None, bytes]]:
        rest, self._buffer = self._buffer, b""
        events = self._parser.feed(rest) if rest else []
        return _pairs([*events, *self._parser.flush()])


def _pairs(events: list[SSEEvent]) -> list[tuple[str | None, bytes]]:
    return [(event.event, event.data.encode()) for event in events]


Plain = tuple[bytes, str]  # a text-only frame as read by a tap: its forwarded bytes and its text


class WireTapBase:
    """A codec's wire tap over raw bytes: frames cut by :class:`FrameSplitter`, each read by ``read``.

    Text-only frames (the bulk of a stream) come back from ``read`` as a plain ``(bytes, text)`` pair,
    and each run of them becomes ONE ``WireFrame``: a model object per upstream read, not per frame.
    """

    format: str = ""  # the wire format of the frames this tap forwards

    def __init__(self) -> None:
        self._splitter = FrameSplitter()

    def feed_bytes(self, chunk: bytes) -> list[StreamEvent]:
        return self._events(self._splitter.feed(chunk))

    def flush(self) -> list[StreamEvent]:
        return self._events(self._splitter.flush())

    def _events(self, frames: list[tuple[str | None, bytes]]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        run: list[Plain] = []
        for event, data in frames:
            read = self.read(event, data)
            if isinstance(read, tuple):
                run.append(read)
                continue
            if run:
                out.append(self._run(run))
                run = []
            out.extend(read)
        if run:
            out.append(self._run(run))
        return out

    def _run(self, run: list[Plain]) -> WireFrame:
        if len(run) == 1:
            data, text = run[0]
        else:
            data, text = b"".join([piece[0] for piece in run]), "".join([piece[1] for piece in run])
        return WireFrame(format=self.format, data=data, text=text, pieces=len(run))

    def read(self, event: str | None, data: bytes) -> Plain | list[StreamEvent]:
        """One frame: a text-only one as ``(forwarded bytes, text)``, any other as its events."""
        raise NotImplementedError

    def finish(self) -> list[StreamEvent]:
        return []
