"""How attempts travel up through stacked wrappers, for answers, streams and errors alike.

Every upstream attempt (and every target skipped for an open breaker or a missing capability) is an
:class:`~execution_platform.model.Attempt`. A wrapper's ``chat`` returns them on
``ChatResponse.attempts``; a failure carries them on the raised error as ``err.attempts``; a wrapper's
``stream`` returns a :class:`RoutedStream` whose ``attempts`` is a live view that already includes the
serving attempt once the first event has been delivered. :func:`attempts_of` reads any of the three,
so the gateway does::

    stream = provider.stream(request)
    first = await anext(stream)                  # headers go out now
    headers["x-ep-attempts"] = str(upstream_attempts(attempts_of(stream)))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..errors import EPError
from ..model import Attempt, StreamEvent

__all__ = ["RoutedStream", "attach", "attempts_of", "served_by", "upstream_attempts"]


def attempts_of(obj: Any) -> list[Attempt]:
    """Attempts recorded on a response, a :class:`RoutedStream` or an error (empty when none)."""
    found = getattr(obj, "attempts", None)
    return list(found) if found else []


def attach(err: EPError, attempts: list[Attempt]) -> EPError:
    """Put the attempts made so far on an error before it propagates (returns the error)."""
    err.attempts = list(attempts)  # type: ignore[attr-defined]
    return err


def upstream_attempts(attempts: list[Attempt]) -> int:
    """How many calls really reached an upstream (what ``x-ep-attempts`` reports); skips excluded."""
    return sum(1 for a in attempts if a.status != "skipped")


def served_by(attempts: list[Attempt]) -> Attempt | None:
    """The attempt that produced the answer (the last successful one)."""
    return next((a for a in reversed(attempts) if a.status == "ok"), None)


class RoutedStream:
    """An async iterator of stream events that also exposes the attempts behind it.

    ``body`` is the wrapper's generator function; it receives this object to record attempts on
    (:meth:`record`) or to expose an inner stream's attempts while it is being consumed
    (:meth:`follow`, then :meth:`settle` when that inner stream is done).
    """

    def __init__(self, body: Callable[[RoutedStream], AsyncIterator[StreamEvent]]) -> None:
        self._settled: list[Attempt] = []
        self._live: Any = None
        self._rates: Callable[[], dict[str, str]] | None = None
        self._gen = body(self)

    @property
    def rate_limits(self) -> dict[str, str]:
        """``x-ratelimit-*`` of the limits the request counted against (empty when none applied).

        Filled in by whoever admits the request (a metered client, see :meth:`report_rates`) before it
        asks for the first upstream event, so a server can send them with the stream's headers."""
        return self._rates() if self._rates is not None else {}

    def report_rates(self, rates: Callable[[], dict[str, str]]) -> None:
        """Read :attr:`rate_limits` from ``rates`` from now on: a live view, because every attempt
        may add a tighter limit (its deployment's) to what the admission counted."""
        self._rates = rates

    @property
    def attempts(self) -> list[Attempt]:
        live = attempts_of(self._live) if self._live is not None else []
        return [*self._settled, *live]

    @property
    def served_by(self) -> Attempt | None:
        return served_by(self.attempts)

    def record(self, attempt: Attempt) -> None:
        self._settled.append(attempt)

    def follow(self, inner: Any) -> None:
        self._live = inner

    def settle(self) -> None:
        if self._live is not None:
            self._settled.extend(attempts_of(self._live))
            self._live = None

    def __aiter__(self) -> RoutedStream:
        return self

    def __anext__(self) -> Awaitable[StreamEvent]:
        # The generator's own awaitable, not a coroutine around it: one object less per event and
        # per wrapper level (a routed stream passes every event through several of these).
        return self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release the upstream connection."""
        await self._gen.aclose()  # type: ignore[attr-defined]


async def close_quietly(stream: Any) -> None:
    """Close an inner stream if it can be closed (async generators and :class:`RoutedStream` can)."""
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        await closer()
