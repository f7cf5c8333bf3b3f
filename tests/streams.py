"""Reading canonical streams in tests: one home for the helpers codec, adapter and contract tests share.

Folding events into a response, draining an adapter's stream, and decoding wire bytes cut at
arbitrary network boundaries are the same steps whichever provider a test is about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from execution_platform.codecs.sse import SSEEvent, SSEParser
from execution_platform.model import ChatRequest, ChatResponse, StreamAccumulator, StreamEvent
from execution_platform.providers.base import Provider


class StreamDecoder(Protocol):
    """What every codec's ``StreamDecoder`` offers: SSE events in, canonical events out."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


def fold(events: Iterable[StreamEvent]) -> ChatResponse:
    """The response a consumer would assemble from ``events``."""
    acc = StreamAccumulator()
    for event in events:
        acc.add(event)
    return acc.response()


async def collect(provider: Provider, request: ChatRequest) -> tuple[list[StreamEvent], ChatResponse]:
    """Every event of ``provider``'s stream for ``request``, and the response they fold into."""
    events = [event async for event in provider.stream(request)]
    return events, fold(events)


def decode_sse(
    raw: bytes, decoder: StreamDecoder, cut: int, *, check: Callable[[SSEEvent], None] | None = None
) -> list[StreamEvent]:
    """Decode a wire stream delivered in ``cut``-byte pieces (``check`` sees every SSE event first)."""
    parser = SSEParser()
    out: list[StreamEvent] = []

    def take(events: Iterable[SSEEvent]) -> None:
        for sse in events:
            if check is not None:
                check(sse)
            out.extend(decoder.feed(sse))

    for start in range(0, len(raw), cut):
        take(parser.feed(raw[start : start + cut]))
    take(parser.flush())
    return out + decoder.finish()


def without_ids(resp: ChatResponse, *, tool_call_ids: bool = True) -> ChatResponse:
    """``resp`` without what differs between two calls for the same answer: ids minted per call and the
    provider name (and, unless ``tool_call_ids=False``, tool-call ids a wire leaves to the adapter)."""
    message = resp.message
    if tool_call_ids:
        calls = [c.model_copy(update={"id": ""}) for c in message.tool_calls]
        message = message.model_copy(update={"tool_calls": calls})
    return resp.model_copy(update={"id": "", "provider": None, "message": message})
