"""What a request needs, what a target offers, and what is missing between the two.

Offers come from each adapter's ``capabilities(model)`` (the providers' maintained tables) with the
YAML ``capabilities:`` overrides on top. Needs are derived from the request itself, so a caller never
has to declare that a message with an image needs vision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from ..config.schema import CapabilitiesOverride
from ..model import Capabilities, ChatRequest, ImagePart, TextPart, ThinkingPart

__all__ = ["Needs", "apply_override", "intersect", "missing", "needs_of", "prompt_bytes"]

# An image costs at most this many tokens on the providers we know (OpenAI high detail, Anthropic and
# Gemini large images all stay below it); counted as bytes so it joins the byte-based bound.
_IMAGE_BOUND = 2000
_MESSAGE_OVERHEAD = 8
# Typical UTF-8 bytes per token for English text and code with modern BPE vocabularies.
_TYPICAL_BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class Needs:
    capabilities: frozenset[str] = field(default_factory=frozenset)
    prompt_bytes: int = 0  # an upper bound on prompt tokens: every token covers at least one byte
    max_tokens: int | None = None


def prompt_bytes(request: ChatRequest) -> int:
    """UTF-8 size of everything that becomes prompt tokens (text, tool calls, tool specs, images)."""
    total = 0
    for message in request.messages:
        total += _MESSAGE_OVERHEAD
        for part in message.content:
            if isinstance(part, TextPart | ThinkingPart):
                total += len(part.text.encode())
            elif isinstance(part, ImagePart):
                total += _IMAGE_BOUND
        for call in message.tool_calls:
            total += len(call.name) + len(orjson.dumps(call.arguments)) + len(call.raw_arguments or "")
    for tool in request.tools:
        total += len(orjson.dumps(tool.model_dump(exclude_none=True)))
    return total


def needs_of(request: ChatRequest, requires: Iterable[str] = (), *, stream: bool = False) -> Needs:
    """The capabilities ``request`` needs, plus anything a persona policy always requires."""
    caps = set(requires)
    if request.tools and request.tool_choice != "none":
        caps.add("tools")
        if request.parallel_tool_calls:
            caps.add("parallel_tools")
    if any(isinstance(p, ImagePart) for m in request.messages for p in m.content):
        caps.add("vision")
    if request.response_format is not None and request.response_format.type in ("json_schema", "json_object"):
        caps.add(request.response_format.type)
    if any(m.role in ("system", "developer") for m in request.messages):
        caps.add("system_prompt")
    if stream:
        caps.add("streaming")
    return Needs(frozenset(caps), prompt_bytes(request), request.max_tokens)


def missing(offer: Capabilities, needs: Needs) -> list[str]:
    """What ``offer`` lacks for ``needs``, as readable names (empty when the target can serve it).

    The prompt check is two-staged: the byte count is a hard upper bound on tokens, so a prompt within
    the window by bytes surely fits; beyond that, only a prompt whose typical token count still
    exceeds the window is refused here. The upstream's own context-length error remains the final word
    (and moves the call on to the next target).
    """
    lacking = [name for name in sorted(needs.capabilities) if not getattr(offer, name, False)]
    window = offer.context_window
    if window is not None and needs.prompt_bytes > window and needs.prompt_bytes / _TYPICAL_BYTES_PER_TOKEN > window:
        lacking.append(f"context_window (prompt ≈{needs.prompt_bytes // _TYPICAL_BYTES_PER_TOKEN} tokens > {window})")
    if needs.max_tokens and offer.max_output_tokens and needs.max_tokens > offer.max_output_tokens:
        lacking.append(f"max_output_tokens ({needs.max_tokens} > {offer.max_output_tokens})")
    return lacking


def apply_override(base: Capabilities, override: CapabilitiesOverride | None) -> Capabilities:
    if override is None:
        return base
    return base.model_copy(update=override.model_dump(exclude_none=True))


def intersect(offers: list[Capabilities]) -> Capabilities:
    """What every one of several deployments can do (a load-balanced group serves as its weakest)."""
    if not offers:
        return Capabilities()
    data = offers[0].model_dump()
    for other in offers[1:]:
        for key, value in other.model_dump().items():
            if isinstance(value, bool):
                data[key] = data[key] and value
            elif value is not None:
                data[key] = value if data[key] is None else min(data[key], value)
    return Capabilities(**data)
