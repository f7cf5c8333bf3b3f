"""The shape every codec module follows, written down as protocols for type checkers and readers."""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import EPError
from ..model import ChatRequest, ChatResponse, StreamEvent
from .sse import SSEEvent


class StreamDecoder(Protocol):
    """Wire stream → canonical events. Stateful: one instance per upstream stream."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]:
        """Called at end of stream; emits anything still pending (e.g. unterminated tool calls)."""
        ...


class StreamEncoder(Protocol):
    """Canonical events → SSE bytes in the wire format. Stateful: one instance per served stream."""

    def encode(self, event: StreamEvent) -> bytes: ...

    def finish(self) -> bytes:
        """Trailer after the last event (e.g. OpenAI's ``data: [DONE]``)."""
        ...


class Codec(Protocol):
    """Module-level functions each codec module provides."""

    def encode_request(self, request: ChatRequest, *, stream: bool = False) -> dict[str, Any]: ...

    def decode_request(self, body: dict[str, Any]) -> ChatRequest: ...

    def encode_response(self, response: ChatResponse) -> dict[str, Any]: ...

    def decode_response(self, body: dict[str, Any]) -> ChatResponse: ...

    def decode_error(self, status: int, body: bytes, headers: Any) -> EPError: ...

    def encode_error(self, error: EPError) -> tuple[int, dict[str, Any]]: ...
