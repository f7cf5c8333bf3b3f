"""Hard input limits, enforced before anything is decoded or sent upstream.

A gateway that buffers arbitrary bodies or forwards million-message conversations can be knocked over
by one client; these checks are cheap (a length here, a count there) and run on every model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from ..errors import InvalidRequestError, PayloadTooLargeError
from ..model import ChatRequest, ImagePart, TextPart, ThinkingPart
from .fastpath import HotRequest


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable ceilings; defaults leave room for inline images and long contexts."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_messages: int = 2000
    max_message_chars: int = 4 * 1024 * 1024

    @classmethod
    def from_mapping(cls, data: Any) -> Limits:
        """Build from a config mapping/object, ignoring what it does not set."""
        if data is None:
            return cls()
        get = data.get if isinstance(data, dict) else lambda k, d=None: getattr(data, k, d)
        values = {name: get(name) for name in ("max_body_bytes", "max_messages", "max_message_chars")}
        return cls(**{k: int(v) for k, v in values.items() if v is not None})


async def read_body(request: Request, limits: Limits) -> bytes:
    """The raw body, refusing (413) as soon as it passes the limit instead of buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise PayloadTooLargeError(f"request body over the {limits.max_body_bytes} byte limit")
    if isinstance(request, HotRequest):
        return await request.read_body(limits.max_body_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise PayloadTooLargeError(f"request body over the {limits.max_body_bytes} byte limit")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


MAX_JSON_DEPTH = 64


def check_depth(raw: bytes, value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when JSON nests deeper than ``limit``.

    orjson decodes up to 1024 levels but refuses to encode more than 255, so a deep body accepted here
    would fail later, on the way upstream, as a 500. Real requests nest a dozen levels; counting the
    brackets (in C) skips the walk for every body that cannot be that deep.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise InvalidRequestError(f"JSON nested deeper than {limit} levels", code="json_too_deep")
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                nxt.extend(v for v in item if isinstance(v, dict | list))
        level = nxt


def parse_json(raw: bytes) -> Any:
    """Decode a request body: 400 (never a 500 further on) when not JSON or nested too deep."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("request body is not valid JSON") from None
    check_depth(raw, body)
    return body


async def read_json_object(request: Request, limits: Limits) -> dict[str, Any]:
    """Body as a JSON object: 413 when too large, 400 when not JSON, too deep or not an object."""
    body = parse_json(await read_body(request, limits))
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    return body


def check_message_count(body: dict[str, Any], limits: Limits, key: str = "messages") -> None:
    """Count on the raw body, before decoding, so an oversized list costs nothing to refuse."""
    messages = body.get(key)
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise InvalidRequestError(
            f"too many messages: {len(messages)} > {limits.max_messages}", param=key, code="too_many_messages"
        )


def check_message_sizes(request: ChatRequest, limits: Limits) -> None:
    """Per-message size in characters (text, reasoning, inline image data and tool arguments)."""
    ceiling = limits.max_message_chars
    for index, message in enumerate(request.messages):
        size = 0
        for part in message.content:
            if isinstance(part, TextPart | ThinkingPart):
                size += len(part.text)
            elif isinstance(part, ImagePart):
                size += len(part.data or part.url or "")
        for call in message.tool_calls:
            size += len(call.raw_arguments) if call.raw_arguments is not None else len(orjson.dumps(call.arguments))
        if size > ceiling:
            raise InvalidRequestError(
                f"message {index} is {size} characters, over the {ceiling} limit",
                param=f"messages.{index}",
                code="message_too_large",
            )
