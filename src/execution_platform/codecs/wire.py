"""What the codecs' wire taps share: cutting raw SSE into frames, placing and joining forwarded frames."""

from __future__ import annotations

import re

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

    def cut(self, chunk: bytes) -> list[bytes] | None:
        """The complete raw frames (blank-line separated) that ``chunk`` ends; ``None`` once the
        stream needs the general parser, and then :meth:`feed` must take ``chunk`` instead."""
        if self._slow or b"\r" in chunk:  # the buffer kept from a cut never holds a \r
            return None
        buffer = self._buffer + chunk if self._buffer else chunk
        frames = buffer.split(b"\n\n")
        self._buffer = frames.pop()
        return frames

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        frames = self.cut(chunk)
        if frames is None:
            if not self._slow:
                buffer, self._buffer, self._slow = self._buffer + chunk, b"", True
                return _pairs(self._parser.feed(buffer))
            return _pairs(self._parser.feed(chunk))
        out: list[tuple[str | None, bytes]] = []
        for frame in frames:
            self.split(frame, out)
        return out

    def split(self, frame: bytes, out: list[tuple[str | None, bytes]]) -> None:
        """One raw frame (as :meth:`cut` returns it) appended to ``out`` as its ``(event, data)`` pairs."""
        if frame.startswith(b"data: ") and b"\n" not in frame:
            out.append((None, frame[6:]))
            return
        if frame.startswith(b"event: "):
            newline = frame.find(b"\n")
            if frame.startswith(b"data: ", newline + 1) and frame.find(b"\n", newline + 1) == -1:
                out.append((frame[7:newline].decode(), frame[newline + 7 :]))
                return
        if frame:
            out.extend(_pairs(self._parser.feed(frame + b"\n\n")))

    def flush(self) -> list[tuple[str | None, bytes]]:
        rest, self._buffer = self._buffer, b""
        events = self._parser.feed(rest) if rest else []
        return _pairs([*events, *self._parser.flush()])


def _pairs(events: list[SSEEvent]) -> list[tuple[str | None, bytes]]:
    return [(event.event, event.data.encode()) for event in events]


Plain = tuple[bytes, str]  # a text-only frame as read by a tap: its forwarded bytes and its text

# What a templated frame's text may not hold: anything JSON would escape (or reject) in a string.
_UNSAFE = re.compile(rb'["\\\x00-\x1f]')
_PROBE = b"ep0probe0text"  # a text no escaping touches, put in a learned frame's place to test the template
_LEARN_TRIES = 3  # plain frames a stream may spend on learning its template (each costs one more parse)


class _Template:
    """The bytes around the text of a stream's plain frames, which repeat from frame to frame.

    A frame ``prefix + text + suffix`` with a text free of quotes, backslashes and control characters
    parses as the learned frame did with only its text changed (the text sits inside one JSON string),
    so it is a plain frame forwarded as ``head + text + tail`` without being parsed at all.
    """

    __slots__ = ("parts",)

    def __init__(self, prefix: bytes, suffix: bytes, head: bytes, tail: bytes) -> None:
        # (prefix, suffix, head, tail, where the text starts, where it ends from the back, least length)
        self.parts = (prefix, suffix, head, tail, len(prefix), -len(suffix), len(prefix) + len(suffix))


class WireTapBase:
    """A codec's wire tap over raw bytes: frames cut by :class:`FrameSplitter`, each read by ``read``.

    Text-only frames (the bulk of a stream) come back from ``read`` as a plain ``(bytes, text)`` pair,
    and each run of forwarded frames becomes ONE ``WireFrame`` (as :func:`coalesce` would join them):
    a model object per upstream read, not per frame.

    Plain frames of one stream differ only in their text (same id, model, index, key order), so the
    tap learns their template from the first one ``plain`` accepts, after proving it on a probe text
    (:meth:`_learn`); later frames that fit it are forwarded and their text read without parsing JSON.
    A frame that does not fit is read as before, so what comes out never depends on the template.
    """

    format: str = ""  # the wire format of the frames this tap forwards

    def __init__(self) -> None:
        self._splitter = FrameSplitter()
        self._template: _Template | None = None
        self._tries = _LEARN_TRIES

    def feed_bytes(self, chunk: bytes) -> list[StreamEvent]:
        frames = self._splitter.cut(chunk)
        if frames is None:
            return self._events(self._splitter.feed(chunk))
        out: list[StreamEvent] = []
        data: list[bytes] = []  # the forwarded bytes of the current run of frames
        texts: list[str] = []  # the texts in them
        pieces = 0  # and how many text deltas those came in
        pairs: list[tuple[str | None, bytes]] = []
        template = self._template
        if template is not None:
            prefix, suffix, head, tail, start, end, size = template.parts
        unsafe = _UNSAFE.search
        for frame in frames:
            if template is not None and len(frame) > size and frame.startswith(prefix) and frame.endswith(suffix):
                text = frame[start:end]
                if unsafe(text) is None:
                    data += (head, text, tail)
                    texts.append(text.decode())
                    pieces += 1
                    continue
            self._splitter.split(frame, pairs)
            for event, raw in pairs:
                read = self.read(event, raw)
                if isinstance(read, tuple):
                    if template is None and self._tries:
                        template = self._learn(event, raw, read)
                        if template is not None:
                            prefix, suffix, head, tail, start, end, size = template.parts
                    data.append(read[0])
                    texts.append(read[1])
                    pieces += 1
                    continue
                for item in read:  # forwarded frames join the run; any other event ends it (see coalesce)
                    if isinstance(item, WireFrame):
                        data.append(item.data)
                        if item.text:
                            texts.append(item.text)
                        pieces += item.pieces
                        continue
                    if data:
                        out.append(self._joined(data, texts, pieces))
                        data, texts, pieces = [], [], 0
                    out.append(item)
            pairs.clear()
        if data:
            out.append(self._joined(data, texts, pieces))
        return out

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

    def _joined(self, data: list[bytes], texts: list[str], pieces: int) -> WireFrame:
        return WireFrame(format=self.format, data=b"".join(data), text="".join(texts), pieces=pieces)

    def _learn(self, event: str | None, data: bytes, read: Plain) -> _Template | None:
        """Keep the template of this plain frame if a probe text put in its text's place reads as plain too.

        The text must appear once, quoted and unescaped, in the frame's data; ``plain`` must then read
        back exactly the probe as the probe frame's text, and forward it once.
        """
        self._tries -= 1
        forwarded, text = read
        raw = text.encode()
        if not raw or _UNSAFE.search(raw) is not None or b"\n" in data or _PROBE in data:
            return None  # (a frame without line breaks in its data is cut as its header and data)
        quoted = b'"' + raw + b'"'
        at = data.find(quoted)
        if at == -1 or data.find(quoted, at + 1) != -1:
            return None
        header = b"event: " + event.encode() + b"\ndata: " if event is not None else b"data: "
        prefix, suffix = header + data[: at + 1], data[at + 1 + len(raw) :]
        try:
            probed = self.plain(event, data[: at + 1] + _PROBE + suffix)
        except ValueError:
            return None
        if probed is None or probed[1] != _PROBE.decode() or probed[0].count(_PROBE) != 1:
            return None
        head, tail = probed[0].split(_PROBE)
        if head + raw + tail != forwarded:
            return None
        self._template = _Template(prefix, suffix, head, tail)
        return self._template

    def read(self, event: str | None, data: bytes) -> Plain | list[StreamEvent]:
        """One frame: a text-only one as ``(forwarded bytes, text)``, any other as its events."""
        raise NotImplementedError

    def plain(self, event: str | None, data: bytes) -> Plain | None:
        """``data`` as a text-only frame (what ``read`` returns for it), or ``None``; no state changes.

        ``read`` must return the same for a frame this accepts, once the stream is past its start.
        """
        return None

    def finish(self) -> list[StreamEvent]:
        return []
