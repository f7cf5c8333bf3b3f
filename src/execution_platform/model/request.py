"""The canonical chat request."""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

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

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Every provider wants an object schema for arguments; anything else used to be silently
        # replaced by an empty one, so a malformed tool reached the model without its arguments.
        if value.get("type", "object") != "object":
            raise ValueError("tool parameters must be a JSON Schema with type 'object'")
        return value


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


# Strict types: "100" or true are not token counts, -1e308 is not a temperature. Values are
# checked once here, at decode on every surface, before policy (budgets, caps) reads them.
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
Temperature = Annotated[float, Field(strict=True, ge=0, le=2, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Penalty = Annotated[float, Field(strict=True, ge=-2, le=2, allow_inf_nan=False)]
WireFormat = Literal["openai", "anthropic", "gemini", "openai_responses"]


class Passthrough(CanonicalModel):
    """Request fields the canonical model does not know, tagged with the wire format they came in.

    An encoder copies them only into a body of the same format, and never over a field the gateway
    owns; across formats they are dropped and reported. ``tools`` holds that format's server or
    built-in tools (web search, code execution…), which no other provider can run.
    """

    format: WireFormat
    fields: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WireHint:
    """The client's own wire format, so an upstream adapter of that format may answer in its bytes.

    Set by the gateway's same-format fast path, never decoded from a body. The request itself still
    crosses as canonical (every policy edit applies); only the answer may come back as the upstream's
    bytes (``ChatResponse.wire_body``, ``WireFrame`` events). ``include_usage``: whether the client
    asked for the usage chunk (OpenAI ``stream_options.include_usage``), which the gateway always asks
    the upstream for, to meter the call.
    """

    format: str
    include_usage: bool = True


# Where the hint is kept: in the instance's ``__dict__`` under a name no field has, so copies (``model_copy``,
# ``copy``, pickling) carry it, while validation never reads it, serialization never writes it and
# equality ignores it. A pydantic ``PrivateAttr`` would do the same but costs every construction a
# Python-level post-init call, and a request and a response are built per model call.
_WIRE = "_wire"


class ChatRequest(CanonicalModel):
    """A provider-neutral chat request.

    ``model`` is whatever address the caller used (``openai/gpt-4o``, a deployment, ``persona:x``);
    providers receive it already resolved to their own model name. ``provider_options`` are
    explicit options for whichever upstream serves the call (native callers and config); they may
    add fields but never set one the gateway owns. ``passthrough`` carries a wire client's unknown
    fields to an upstream of the same format only.
    """

    model: str
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    top_k: PositiveInt | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    max_tokens: PositiveInt | None = None
    stop: list[str] | None = None
    seed: Annotated[int, Field(strict=True)] | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    # OpenAI's ``prompt_cache_key``: groups requests that share a prefix; a hint other upstreams ignore.
    prompt_cache_key: str | None = None
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)
    provider_options: dict[str, Any] = Field(default_factory=dict)
    passthrough: Passthrough | None = None
    @property
    def wire(self) -> WireHint | None:
        """The same-format fast path's hint (see :class:`WireHint`); ``None`` on the canonical path."""
        return self.__dict__.get(_WIRE)

    def set_wire(self, hint: WireHint | None) -> None:
        """Ask for (or, with ``None``, rule out) the answer in the client's own wire bytes."""
        self.__dict__[_WIRE] = hint

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
