"""Hold a stream's ``StartEvent`` back until real content arrives.

Until the caller has seen content, a failed attempt can still be retried or moved to another target
without the caller noticing; once content went out, it cannot. Retry, balancing and fallback all
need exactly this, so it lives here once. A plain filter, not a generator, so no extra async
generator sits between a consumer and the upstream stream it may close.
"""

from __future__ import annotations

from ..model import StartEvent, StreamEvent

__all__ = ["StartGate"]


class StartGate:
    """Feed every upstream event through :meth:`admit`; ``emitted`` says whether content went out."""

    __slots__ = ("_held", "emitted")

    def __init__(self) -> None:
        self.emitted = False
        self._held: list[StreamEvent] = []

    def admit(self, event: StreamEvent) -> list[StreamEvent]:
        """The events to pass on now (none while only a start event has arrived)."""
        if self.emitted:
            return [event]
        if isinstance(event, StartEvent):
            self._held.append(event)
            return []
        self.emitted = True
        out, self._held = [*self._held, event], []
        return out

    def flush(self) -> list[StreamEvent]:
        """At a clean end of stream: whatever is still held."""
        out, self._held = self._held, []
        return out
