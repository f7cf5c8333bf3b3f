"""Prompt-size estimates for reservations: an UPPER bound on input tokens, computed offline.

Every BPE tokenizer in use (OpenAI, Anthropic, Gemini) emits tokens of at least one byte, so the UTF-8
length of everything sent is a safe upper bound on text tokens, whatever the provider; a per-message
allowance covers role/separator tokens. Images are not counted by their (base64) bytes but by a fixed
allowance above what any of the three providers charges for one image. ``tiktoken`` would be tighter
for OpenAI models, but it downloads its encoding on first use, and it is not an upper bound for other
providers; it is used only for the *estimate* of output tokens of a cancelled stream, and only when its
encoding is already cached on disk (never a network fetch on the request path).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from functools import lru_cache
from typing import Any

import orjson

from ..model import ChatRequest, EmbeddingRequest, ImagePart, TextPart, ThinkingPart

PER_MESSAGE_TOKENS = 8
PER_IMAGE_TOKENS = 8_000
PER_TOOL_TOKENS = 16
PER_INPUT_TOKENS = 4  # separators a provider may count per embedding input, on top of the text itself


def _bytes(text: str | None) -> int:
    return len(text.encode("utf-8")) if text else 0


def prompt_tokens_upper_bound(request: ChatRequest) -> int:
    """At least as many input tokens as any provider will bill for ``request``."""
    total = 0
    for message in request.messages:
        total += PER_MESSAGE_TOKENS + _bytes(message.name) + _bytes(message.tool_call_id)
        for part in message.content:
            if isinstance(part, TextPart):
                total += _bytes(part.text) + _bytes(part.signature)
            elif isinstance(part, ThinkingPart):
                total += _bytes(part.text) + _bytes(part.signature) + _bytes(part.data)
            elif isinstance(part, ImagePart):
                total += PER_IMAGE_TOKENS
        for call in message.tool_calls:
            total += PER_TOOL_TOKENS + _bytes(call.name) + len(orjson.dumps(call.arguments))
            total += _bytes(call.raw_arguments) + _bytes(call.signature)
    for tool in request.tools:
        total += PER_TOOL_TOKENS + _bytes(tool.name) + _bytes(tool.description)
        total += len(orjson.dumps(tool.parameters))
    if request.response_format is not None:
        total += len(orjson.dumps(request.response_format.model_dump(by_alias=True, exclude_none=True)))
    return total


def input_tokens_upper_bound(request: ChatRequest | EmbeddingRequest) -> int:
    """The upper bound of either kind of call: a chat prompt's, or the texts of an embeddings call."""
    if isinstance(request, ChatRequest):
        return prompt_tokens_upper_bound(request)
    return sum(_bytes(text) + PER_INPUT_TOKENS for text in request.inputs)


_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _tiktoken_cache_path(url: str) -> str:
    """Where tiktoken keeps a downloaded file (same rule as ``tiktoken.load.read_file_cached``)."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


@lru_cache(maxsize=1)
def _cached_encoding() -> Any:
    """o200k_base if its file is already in tiktoken's cache; None otherwise (never downloads)."""
    if not os.path.exists(_tiktoken_cache_path(_O200K_URL)):
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding("o200k_base")
    except Exception:
        return None


def estimate_text_tokens(text: str) -> int:
    """A realistic (not bounding) token count for generated text: tiktoken when cached, else ~3 B/token."""
    if not text:
        return 0
    encoding = _cached_encoding()
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return math.ceil(_bytes(text) / 3)


def prompt_tokens_estimate(request: ChatRequest) -> int:
    """A realistic (not bounding) input-token count, for rows of calls that ended before usage arrived."""
    total = 0
    for message in request.messages:
        total += 4 + sum(estimate_text_tokens(p.text) for p in message.content if isinstance(p, TextPart))
        total += sum(1_000 for p in message.content if isinstance(p, ImagePart))
    return total


def embedding_tokens_estimate(request: EmbeddingRequest) -> int:
    """A realistic input-token count for providers whose embeddings answer has none (Gemini's)."""
    return sum(estimate_text_tokens(text) for text in request.inputs)
