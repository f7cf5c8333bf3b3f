"""The gateway's side of the same-format fast path: serve the upstream's own bytes when they fit.

The request always crosses as canonical, so every policy edit, check and hold applies as on any
other call; only the answer differs. When the client speaks the serving adapter's wire format, the
adapter keeps the upstream's body (``ChatResponse.wire_body``) or forwards its stream frames
(``WireFrame`` events, followed by the canonical start/usage/finish events metering reads), and this
module serves those bytes instead of re-encoding canonical objects. A fallback to an upstream of
another format answers in canonical events, which are encoded as before: the choice is made per
response, from what actually arrived.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import EPError
from ..model import ChatRequest, StartEvent, StreamEvent, WireFrame, WireHint
from .state import Gateway


def enabled(gw: Gateway) -> bool:
    """``EP_FAST_PATH`` and ``server.fast_path`` (both on by default); read per call, so a reload applies."""
    return gw.settings.fast_path and (gw.config is None or gw.config.server.fast_path)


def ask(gw: Gateway, chat: ChatRequest, format: str, *, include_usage: bool = True) -> str | None:
    """Mark ``chat`` as answerable in ``format``'s bytes when the fast path is on; returns that format."""
    if not enabled(gw):
        return None
    hint = _HINTS.get((format, include_usage))
    if hint is None:
        hint = _HINTS[(format, include_usage)] = WireHint(format, include_usage)
    chat.set_wire(hint)
    return format


# The hints handed out, one per format and usage choice: a hint is frozen, so every call may share one.
_HINTS: dict[tuple[str, bool], WireHint] = {}


class FrameSelector:
    """An SSE encoder choosing per stream: the upstream's frames as they are, or canonical encoding.

    A stream answered in the client's format has a ``WireFrame`` right after its ``StartEvent``;
    then every frame is served as it came, and the canonical events (the start included) are only
    for metering. Any other stream goes through ``encode`` whole. Until that is known, the start's
    own encoding is held back and goes out with the next event's (``pending`` serves it when the
    stream ends or fails first), so a canonical stream's bytes are the same as without a selector.
    """

    __slots__ = ("encode", "held", "wire")

    def __init__(self, encode: Callable[[StreamEvent], bytes]) -> None:
        self.encode = encode
        self.wire: bool | None = None
        self.held: StartEvent | None = None

    def __call__(self, event: StreamEvent) -> bytes:
        wire = self.wire
        if wire is None:
            if isinstance(event, StartEvent) and self.held is None:
                self.held = event
                return b""
            wire = self.wire = isinstance(event, WireFrame)
            if not wire:
                return self.pending() + self.encode(event)
        if wire:
            return event.data if isinstance(event, WireFrame) else b""
        return self.encode(event)

    def pending(self) -> bytes:
        """The held start's encoding, if the stream's kind was never decided (else nothing)."""
        held, self.held = self.held, None
        return self.encode(held) if held is not None and not self.wire else b""


def serve_frames(
    fast: str | None,
    encode: Callable[[StreamEvent], bytes],
    trailer: Callable[[], bytes],
    on_error: Callable[[EPError], bytes],
) -> tuple[Callable[[StreamEvent], bytes], Callable[[], bytes], Callable[[EPError], bytes]]:
    """The stream's encode/trailer/error functions, choosing frames or canonical when ``fast`` asked."""
    if fast is None:
        return encode, trailer, on_error
    selector = FrameSelector(encode)
    return selector, lambda: selector.pending() + trailer(), lambda err: selector.pending() + on_error(err)
