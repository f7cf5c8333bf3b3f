"""Anthropic Messages API adapter: ``POST {base}/v1/messages`` with ``x-api-key`` auth."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from ..codecs import anthropic_messages
from ..errors import UpstreamServerError
from ..model import Capabilities, ChatRequest, ChatResponse, StreamEvent
from ._http_provider import HTTPProvider
from .json_mode import chat_with, served_capabilities, stream_with

_CONTEXT_WINDOW = 200_000

# What ``/v1/messages/count_tokens`` accepts of a Messages body (it refuses max_tokens, stream, …).
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")

# (pattern on the model name, max output tokens, extended thinking, structured outputs); first match wins.
_FAMILIES: list[tuple[re.Pattern[str], int, bool, bool]] = [
    (re.compile(r"claude-3-5-(sonnet|haiku)"), 8_192, False, False),
    (re.compile(r"claude-3-7-sonnet"), 64_000, True, False),
    (re.compile(r"claude-3-(opus|sonnet|haiku)"), 4_096, False, False),
    (re.compile(r"claude-opus-4(-[01])?($|-\d{8}|-latest)"), 32_000, True, True),
    (re.compile(r"claude-(opus|sonnet|haiku)-4"), 64_000, True, True),
    (re.compile(r"claude-(opus|sonnet|haiku)-[5-9]"), 64_000, True, True),
]


class AnthropicProvider(HTTPProvider):
    """Claude models over the native Messages API (streaming or not)."""

    name = "anthropic"
    codec = anthropic_messages
    default_base_url = "https://api.anthropic.com"
    key_env_var = "EP_ANTHROPIC_API_KEY"

    @classmethod
    def lists_model(cls, model: str) -> bool:
        return any(pattern.search(model) for pattern, *_ in _FAMILIES)

    def url(self, model: str, *, stream: bool) -> str:
        return f"{self.base_url}/v1/messages"

    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key or "", "anthropic-version": anthropic_messages.ANTHROPIC_VERSION}

    async def count_tokens(self, request: ChatRequest) -> int:
        """Anthropic's own count (``POST /v1/messages/count_tokens``, free of charge), exact for Claude."""
        body = self.body(request, stream=False)
        payload: dict[str, Any] = {key: body[key] for key in _COUNT_FIELDS if key in body}
        data = await self.post_json(f"{self.base_url}/v1/messages/count_tokens", payload, what="token count")
        try:
            return int(data["input_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamServerError(f"{self.name}: unexpected token count answer", provider=self.name) from exc

    def default_capabilities(self, model: str) -> Capabilities:
        """Every Claude 3+ model sees images, calls tools and has a 200k window; output size varies."""
        for pattern, max_output, reasoning, structured in _FAMILIES:
            if pattern.search(model):
                return Capabilities(
                    vision=True,
                    json_object=False,
                    json_schema=structured,
                    reasoning=reasoning,
                    context_window=_CONTEXT_WINDOW,
                    max_output_tokens=max_output,
                )
        # Unknown (newer or aliased) Claude model: assume the current generation's abilities.
        return Capabilities(
            vision=True,
            json_object=False,
            json_schema=True,
            reasoning=True,
            context_window=_CONTEXT_WINDOW,
            max_output_tokens=anthropic_messages.DEFAULT_MAX_TOKENS,
        )

    # Claude has no JSON mode without a schema (and older models no structured output at all):
    # both are served by a forced tool call, see :mod:`.json_mode`.
    def capabilities(self, model: str) -> Capabilities:
        return served_capabilities(super().capabilities(model))

    def output_cap(self, request: ChatRequest) -> int | None:
        if request.max_tokens is not None:
            return request.max_tokens
        return anthropic_messages.default_max_tokens(request)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await chat_with(super().chat, request, super().capabilities(request.model))

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return stream_with(super().stream, request, super().capabilities(request.model))
