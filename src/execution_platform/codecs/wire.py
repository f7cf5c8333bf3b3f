"""What the codecs' wire taps share: where a forwarded frame goes among the events it implies."""

from __future__ import annotations

from ..model import StartEvent, StreamEvent, WireFrame


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
