"""The shape every codec module follows, written down as protocols for type checkers and readers.

Naming inside a codec: public functions are the :class:`Codec` members plus a few wire helpers other
layers need; private helpers are ``_encode_<thing>`` (canonical → wire) and ``_decode_<thing>``
(wire → canonical), where ``<thing>`` is the canonical concept (``message``/``messages``,
``content``, ``part``, ``image``, ``tool``, ``tool_call``, ``tool_choice``, ``response_format``,
``usage``, ``finish``), so one step carries one name in every codec.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import EPError
from ..model import ChatRequest, ChatResponse, StreamEvent
from .sse import SSEEvent


class StreamDecoder(Protocol):
    """Wire stream → canonical events. Stateful: one instance per upstream stream."""

    def feed(self, sse: SSEEvent, /) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]:
        """Called at end of stream; emits anything still pending (e.g. unterminated tool calls)."""
        ...


class StreamEncoder(Protocol):
    """Canonical events → SSE bytes in the wire format. Stateful: one instance per served stream."""

    def encode(self, event: StreamEvent, /) -> bytes: ...

    def finish(self) -> bytes:
        """Trailer after the last event (e.g. OpenAI's ``data: [DONE]``)."""
        ...


class Codec(Protocol):
    """Module-level functions each codec module provides. Arguments before ``/`` are passed by
    position (each codec names them its own way); keyword arguments carry the same name everywhere."""

    def encode_request(self, request: ChatRequest, /, *, stream: bool = False) -> dict[str, Any]: ...

    def decode_request(self, body: dict[str, Any], /, *, model: str = "") -> ChatRequest:
        """``model`` is the model when the route names it outside the body (Gemini puts it in the URL
        path); when given it wins over the body's ``model``, when empty the body's is used."""
        ...

    def encode_response(self, response: ChatResponse, /) -> dict[str, Any]: ...

    def decode_response(self, body: dict[str, Any], /) -> ChatResponse: ...

    def decode_error(self, status: int, body: bytes, headers: Any, /) -> EPError: ...

    def encode_error(self, error: EPError, /) -> tuple[int, dict[str, Any]]: ...
