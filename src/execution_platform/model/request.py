"""The canonical chat request."""

from typing import Any, Literal

from pydantic import Field, field_validator

from ._base import CanonicalModel
from .content import CacheControl
from .messages import Message


class ToolSpec(CanonicalModel):
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    cache_control: CacheControl | None = None


class NamedToolChoice(CanonicalModel):
    type: Literal["tool"] = "tool"
    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class ResponseFormat(CanonicalModel):
    """Structured output request. ``json_schema`` holds the schema when ``type == "json_schema"``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class Reasoning(CanonicalModel):
    """Reasoning/thinking controls: an effort level or an explicit token budget."""

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    budget_tokens: int | None = None


class RequestMetadata(CanonicalModel):
    """Who and what a call is for: cost attribution and routing, never sent upstream as-is."""

    persona: str | None = None
    run_id: str | None = None
    team: str | None = None
    key_id: str | None = None
    session_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class ChatRequest(CanonicalModel):
    """A provider-neutral chat request.

    ``model`` is whatever address the caller used (``openai/gpt-4o``, a deployment, ``persona:x``);
    providers receive it already resolved to their own model name. ``provider_options`` carries
    provider-specific parameters through untouched (merged into the upstream body), so nothing a
    caller asks for is silently dropped.
    """

    model: str
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    # OpenAI's ``prompt_cache_key``: groups requests that share a prefix; a hint other upstreams ignore.
    prompt_cache_key: str | None = None
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)
    provider_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
