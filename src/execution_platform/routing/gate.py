"""Try targets one after another until one answers, holding a stream's ``StartEvent`` back meanwhile.

Until the caller has seen content, a failed attempt can still be retried or moved to another target
without the caller noticing; once content went out, it cannot. Retry, balancing and fallback all
need exactly this, so it lives here once: :class:`StartGate` is the filter and :func:`first_stream`
the attempt loop built on it. The gate is a plain filter, not a generator, and the loop is the
wrapper's own stream body, so no extra async generator sits between a consumer and the upstream
stream it may close. :func:`first_answer` is the same loop for a whole answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

from ..errors import EPError
from ..model import Attempt, ChatResponse, EmbeddingResponse, StartEvent, StreamEvent
from .attempts import RoutedStream, attach, attempts_of, close_quietly

__all__ = ["Answer", "StartGate", "first_answer", "first_stream"]

T = TypeVar("T")
Answer = TypeVar("Answer", ChatResponse, EmbeddingResponse)  # a whole answer that carries its attempts


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


async def first_stream(
    routed: RoutedStream,
    tries: Iterable[T],
    open_stream: Callable[[T], AsyncIterator[StreamEvent]],
    failed: Callable[[T, EPError, bool], Awaitable[EPError | None]],
    ended: Callable[[T], None] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Stream the first of ``tries`` that does not fail: the body of a wrapper's ``RoutedStream``.

    Each try's stream comes from ``open_stream``; ``routed`` follows it (its attempts show while it
    runs) and a :class:`StartGate` holds its start event back. When a try fails, its stream is closed
    (and ``ended`` called, as after any try) before ``failed(try, error, emitted)`` decides, so no
    upstream connection is held while it waits: it returns the error to raise (``emitted`` says content
    already reached the caller, so only giving up is honest), or None to go on with the next try.
    When the tries run out, the last failure is raised. Errors go up with every attempt attached.
    """
    last: EPError | None = None
    for candidate in tries:
        inner = open_stream(candidate)
        routed.follow(inner)
        gate = StartGate()  # nothing a client can see before content: a retry/fallback stays possible
        failure: EPError | None = None
        try:
            async for event in inner:
                if gate.emitted:  # past the start: every event goes straight on (no list per event)
                    yield event
                    continue
                for out in gate.admit(event):
                    yield out
            for out in gate.flush():
                yield out
            return
        except EPError as exc:
            failure = exc
        finally:
            if ended is not None:
                ended(candidate)
            routed.settle()
            await close_quietly(inner)
        assert failure is not None  # a success returned; any other exception went up
        final = await failed(candidate, failure, gate.emitted)
        if final is not None:
            attach(final, routed.attempts)
            if final is failure:
                raise failure
            raise final from failure
        last = failure
    assert last is not None, "no tries"
    raise attach(last, routed.attempts)


async def first_answer(
    tries: Iterable[T],
    call: Callable[[T], Awaitable[Answer]],
    failed: Callable[[T, EPError, bool], Awaitable[EPError | None]],
    attempts: list[Attempt] | None = None,
) -> Answer:
    """The answer of the first of ``tries`` that does not fail: :func:`first_stream` for ``chat``
    (and ``embed``, whose answers carry their attempts the same way).

    ``failed`` is the same verdict (``emitted`` is always False: nothing reached the caller yet).
    ``attempts`` are those recorded before the first try (targets skipped); the answer, or the error
    that goes up, carries them with every try's.
    """
    attempts = list(attempts or [])
    last: EPError | None = None
    for candidate in tries:
        try:
            response = await call(candidate)
        except EPError as exc:
            attempts += attempts_of(exc)
            final = await failed(candidate, exc, False)
            if final is not None:
                attach(final, attempts)
                if final is exc:
                    raise
                raise final from exc
            last = exc
            continue
        response.attempts = attempts + response.attempts
        return response
    assert last is not None, "no tries"
    raise attach(last, attempts)
