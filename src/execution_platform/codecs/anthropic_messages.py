"""Anthropic Messages API (``POST /v1/messages``) ⇄ canonical model, in both directions.

Wire facts this codec is built around:

* The system prompt is a top-level ``system`` field (a string or a list of text blocks), not a message.
* Tool results are ``tool_result`` blocks inside a *user* message; several results of one assistant turn
  travel together in one user message. Canonically each result is its own ``role="tool"`` message.
* ``thinking`` / ``redacted_thinking`` blocks carry opaque signatures that must be sent back verbatim.
* ``max_tokens`` is required, so a default is filled in when the caller gave none.
* ``usage.input_tokens`` excludes cache reads and cache writes; the canonical count includes both.
* ``cache_control`` breakpoints may sit on system blocks, content blocks, ``tool_use`` and
  ``tool_result`` blocks and tools; they map to the canonical ``cache_control`` of the same item, and a
  marked lone text part is sent as a block (a plain string has nowhere to carry it).
* Streams are typed SSE events (``message_start`` … ``message_stop``) with ``ping`` keep-alives and an
  in-band ``event: error``; usage arrives in ``message_start`` and (cumulatively) in ``message_delta``.
* Structured output is ``output_config.format = {type: json_schema, schema}``; effort is
  ``output_config.effort``. Anthropic has no JSON mode without a schema (the provider serves
  ``json_object`` by emulation, see :mod:`execution_platform.providers.json_mode`) and no ``seed`` or
  penalties: those are dropped and reported like any parameter without an equivalent.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson

from ..errors import (
    AuthenticationError,
    BudgetExceededError,
    CapabilityMissingError,
    EPError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    UnsupportedParameterError,
    UpstreamAuthenticationError,
    UpstreamTimeoutError,
    error_for_status,
)
from ..model import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    ContentPart,
    ErrorEvent,
    FinishEvent,
    FinishReason,
    ImagePart,
    Message,
    NamedToolChoice,
    Reasoning,
    ResponseFormat,
    StartEvent,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolSpec,
    Usage,
    UsageEvent,
    WireFrame,
)
from .passthrough import apply_extras, drop_field, split_unknown
from .sse import SSEEvent, frame
from .wire import Plain, WireTapBase
from .wire import after_start as _after_start

# The wire format this codec speaks, as in ``Passthrough.format`` and ``WireHint.format``.
FORMAT = "anthropic"

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "StreamDecoder",
    "StreamEncoder",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
]

ANTHROPIC_VERSION = "2023-06-01"
# Every Claude model since Claude 3 can produce at least this many tokens, so it is always accepted.
DEFAULT_MAX_TOKENS = 4096
PROVIDER = "anthropic"

_KNOWN_REQUEST_KEYS = {
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "metadata",
    "thinking", "tools", "tool_choice", "output_config", "stream", "top_k",
}
_EFFORTS = {"low", "medium", "high"}

_STOP_TO_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

# Anthropic error type -> HTTP status it comes with (used for in-stream errors, which have no status).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# Taxonomy class -> Anthropic error type; the first match in this order wins (subclasses first).
_ERROR_TYPES: list[tuple[type[EPError], str]] = [
    (InvalidRequestError, "invalid_request_error"),
    (AuthenticationError, "authentication_error"),
    (PermissionDeniedError, "permission_error"),
    (NotFoundError, "not_found_error"),
    (PayloadTooLargeError, "request_too_large"),
    (RateLimitError, "rate_limit_error"),
    (OverloadedError, "overloaded_error"),
    (UpstreamTimeoutError, "timeout_error"),
    # Platform-only refusals keep their own type so clients can tell them apart.
    (BudgetExceededError, BudgetExceededError.type),
    (CapabilityMissingError, CapabilityMissingError.type),
    (UpstreamAuthenticationError, UpstreamAuthenticationError.type),
]
_TYPE_BY_CODE: dict[str, str] = {cls.type: wire for cls, wire in _ERROR_TYPES}


# ---------------------------------------------------------------------------------------------
# requests: canonical -> wire
# ---------------------------------------------------------------------------------------------
def default_max_tokens(request: ChatRequest) -> int:
    """``max_tokens`` when the caller gave none; it must exceed a thinking budget to be accepted."""
    budget = request.reasoning.budget_tokens if request.reasoning else None
    return DEFAULT_MAX_TOKENS + (budget or 0)


def encode_request(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages``."""
    body: dict[str, Any] = {"model": request.model}
    system = _encode_system(request.messages)
    if system is not None:
        body["system"] = system
    body["messages"] = _encode_messages(request.messages)
    body["max_tokens"] = request.max_tokens if request.max_tokens is not None else default_max_tokens(request)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        body["top_k"] = request.top_k
    for name in ("frequency_penalty", "presence_penalty", "seed"):
        if getattr(request, name) is not None:
            drop_field(name, "anthropic")
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    if request.tools:
        body["tools"] = [_encode_tool(t) for t in request.tools]
    choice = _encode_tool_choice(request.tool_choice, request.parallel_tool_calls)
    if choice is not None:
        body["tool_choice"] = choice
    output_config: dict[str, Any] = {}
    if request.reasoning is not None:
        if request.reasoning.budget_tokens is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": request.reasoning.budget_tokens}
        if request.reasoning.effort is not None:
            effort = request.reasoning.effort
            output_config["effort"] = "low" if effort == "minimal" else effort
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        raise UnsupportedParameterError(
            "Anthropic has no JSON mode without a schema; use response_format json_schema",
            param="response_format",
            provider=PROVIDER,
        )
    if fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise InvalidRequestError("response_format json_schema needs a schema", param="response_format")
        output_config["format"] = {"type": "json_schema", "schema": fmt.json_schema}
    if output_config:
        body["output_config"] = output_config
    apply_extras(body, request, "anthropic")
    if stream:
        body["stream"] = True
    return body


def _with_cache(block: dict[str, Any], cache: CacheControl | None) -> dict[str, Any]:
    if cache is not None:
        block["cache_control"] = cache.model_dump(exclude_none=True)
    return block


def _encode_system(messages: list[Message]) -> str | list[dict[str, Any]] | None:
    parts = [p for m in messages if m.role in ("system", "developer") for p in m.content]
    texts = [p for p in parts if isinstance(p, TextPart)]
    if not any(m.role in ("system", "developer") for m in messages):
        return None
    if len(texts) == 1 and texts[0].cache_control is None:
        return texts[0].text
    return [_with_cache({"type": "text", "text": p.text}, p.cache_control) for p in texts]


def _encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending_results: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role in ("system", "developer"):
            continue
        if msg.role == "tool":
            pending_results.append(_encode_tool_result(msg))
            continue
        if pending_results:
            out.append({"role": "user", "content": pending_results})
            pending_results = []
        if msg.role == "user":
            out.append({"role": "user", "content": _encode_content(msg.content, simple=True)})
        else:
            blocks = _encode_content(msg.content, simple=not msg.tool_calls)
            if msg.tool_calls:
                assert isinstance(blocks, list)
                blocks.extend(_encode_tool_use(c) for c in msg.tool_calls)
            out.append({"role": "assistant", "content": blocks})
    if pending_results:
        out.append({"role": "user", "content": pending_results})
    return out


def _encode_content(parts: list[ContentPart], *, simple: bool) -> str | list[dict[str, Any]]:
    """A lone plain text part becomes a string (the common wire shape); anything else, blocks."""
    if simple and len(parts) == 1 and isinstance(parts[0], TextPart) and parts[0].cache_control is None:
        return parts[0].text
    return [_encode_part(p) for p in parts]


def _encode_part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return _with_cache({"type": "text", "text": part.text}, part.cache_control)
    if isinstance(part, ImagePart):
        return _with_cache({"type": "image", "source": _encode_image_source(part)}, part.cache_control)
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.data or ""}
    block: dict[str, Any] = {"type": "thinking", "thinking": part.text}
    if part.signature is not None:
        block["signature"] = part.signature
    return block


def _encode_image_source(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        return {"type": "base64", "media_type": part.media_type, "data": part.data}
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        # OpenAI-style data URL: Anthropic wants it as an inline base64 source.
        header, _, data = url.partition(";base64,")
        return {"type": "base64", "media_type": header[len("data:") :], "data": data}
    return {"type": "url", "url": url}


def _encode_tool_use(call: ToolCall, *, cache: bool = True) -> dict[str, Any]:
    arguments = call.arguments
    if not arguments and call.raw_arguments:
        try:
            parsed = orjson.loads(call.raw_arguments)
        except orjson.JSONDecodeError:
            parsed = None
        arguments = parsed if isinstance(parsed, dict) else {}
    block = {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}
    return _with_cache(block, call.cache_control if cache else None)


def _encode_tool_result(msg: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg.tool_call_id or ""}
    if msg.content:
        block["content"] = _encode_content(msg.content, simple=True)
    if msg.is_error:
        block["is_error"] = True
    return _with_cache(block, msg.cache_control)


def _encode_tool(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters
    if tool.strict is not None:
        out["strict"] = tool.strict
    return _with_cache(out, tool.cache_control)


def _encode_tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, NamedToolChoice):
        out: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice == "required":
        out = {"type": "any"}
    else:
        out = {"type": "auto"}
    if parallel is not None:
        out["disable_parallel_tool_use"] = not parallel
    return out


# ---------------------------------------------------------------------------------------------
# requests: wire -> canonical
# ---------------------------------------------------------------------------------------------
def decode_request(body: dict[str, Any], *, model: str = "") -> ChatRequest:
    """A served ``/v1/messages`` body as a canonical request; unknown fields ride along Anthropic-only."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object", param="body")
    named = model or body.get("model")  # a model named outside the body (the route) wins
    if not isinstance(named, str) or not named:
        raise InvalidRequestError("model: Field required", param="model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise InvalidRequestError("messages: Field required (a list)", param="messages")
    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        messages.append(_decode_system(system))
    tool_names: dict[str, str] = {}
    turns: list[Message] = []
    for i, raw in enumerate(raw_messages):
        if isinstance(raw, dict) and raw.get("role") == "system":
            # Recent Claude Code sends extra context as role "system" turns inside ``messages``; they
            # join the top-level system prompt (canonical order: system first) instead of failing.
            messages.append(_decode_system_turn(raw.get("content"), f"messages.{i}"))
        else:
            turns.extend(_decode_message(raw, f"messages.{i}", tool_names))
    messages.extend(turns)
    options: dict[str, Any] = {k: v for k, v in body.items() if k not in _KNOWN_REQUEST_KEYS}
    fields: dict[str, Any] = {"model": named, "messages": messages}
    for key in ("max_tokens", "temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            fields[key] = body[key]
    if body.get("stop_sequences") is not None:
        stops = body["stop_sequences"]
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequestError("stop_sequences must be a list of strings", param="stop_sequences")
        fields["stop"] = stops
    leftovers: dict[str, Any] = {}
    _decode_metadata(body.get("metadata"), fields, leftovers)
    _decode_thinking(body.get("thinking"), fields, leftovers)
    _decode_output_config(body.get("output_config"), fields, leftovers)
    tools, server_tools = _decode_tools(body.get("tools"))
    if tools:
        fields["tools"] = tools
    _decode_tool_choice(body.get("tool_choice"), fields, leftovers)
    fields["passthrough"] = split_unknown(options, "anthropic", leftovers=leftovers, tools=server_tools)
    try:
        return ChatRequest(**fields)
    except EPError:
        raise
    except ValueError as exc:
        first: dict[str, Any] = getattr(exc, "errors", lambda: [{}])()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or "body"
        param = {"stop": "stop_sequences"}.get(param, param)
        raise InvalidRequestError(f"{param}: {first.get('msg', exc)}", param=param) from None


def _decode_system(system: Any) -> Message:
    if isinstance(system, str):
        return Message(role="system", content=system)
    if isinstance(system, list):
        parts: list[ContentPart] = []
        for j, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise InvalidRequestError("system blocks must be text blocks", param=f"system.{j}")
            parts.append(TextPart(text=block["text"], cache_control=_decode_cache(block, f"system.{j}")))
        return Message(role="system", content=parts)
    raise InvalidRequestError("system must be a string or a list of text blocks", param="system")


def _decode_system_turn(content: Any, where: str) -> Message:
    """A ``role: "system"`` turn inside ``messages``: text only, joined into one system message."""
    if isinstance(content, str):
        return Message(role="system", content=content)
    if isinstance(content, list):
        texts: list[Any] = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            # Joined into one part, which keeps the last breakpoint among the blocks (if any).
            marks = [_decode_cache(b, f"{where}.content.{j}") for j, b in enumerate(content)]
            cache = next((m for m in reversed(marks) if m is not None), None)
            return Message(role="system", content=[TextPart(text="\n\n".join(texts), cache_control=cache)])
    raise InvalidRequestError(f"{where}.content: a system turn holds text only", param=f"{where}.content")


def _decode_message(raw: Any, where: str, tool_names: dict[str, str]) -> list[Message]:
    if not isinstance(raw, dict):
        raise InvalidRequestError("each message must be an object", param=where)
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequestError(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role=role, content=content)]
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content: must be a string or a list", param=f"{where}.content")
    if role == "assistant":
        parts: list[ContentPart] = []
        calls: list[ToolCall] = []
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call = _decode_tool_use(block, f"{where}.content.{j}")
                tool_names[call.id] = call.name
                calls.append(call)
            else:
                parts.append(_decode_block(block, f"{where}.content.{j}"))
        return [Message(role="assistant", content=parts, tool_calls=calls)]
    # A user turn may mix tool results and new input: results become tool messages, the rest a user turn.
    out: list[Message] = []
    run: list[ContentPart] = []
    for j, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "tool_result":
            if run:
                out.append(Message(role="user", content=run))
                run = []
            out.append(_decode_tool_result(block, f"{where}.content.{j}", tool_names))
        else:
            run.append(_decode_block(block, f"{where}.content.{j}"))
    if run or not out:
        out.append(Message(role="user", content=run))
    return out


def _decode_block(block: Any, where: str) -> ContentPart:
    if not isinstance(block, dict):
        raise InvalidRequestError("content blocks must be objects", param=where)
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise InvalidRequestError(f"{where}.text: Field required", param=f"{where}.text")
        return TextPart(text=block["text"], cache_control=_decode_cache(block, where))
    if kind == "image":
        image = _decode_image(block.get("source"), f"{where}.source")
        image.cache_control = _decode_cache(block, where)
        return image
    if kind == "thinking":
        return ThinkingPart(text=block.get("thinking") or "", signature=block.get("signature"))
    if kind == "redacted_thinking":
        return ThinkingPart(redacted=True, data=block.get("data"))
    raise InvalidRequestError(f"{where}.type: unsupported content block type {kind!r}", param=f"{where}.type")


def _decode_cache(block: dict[str, Any], where: str) -> CacheControl | None:
    """A block's ``cache_control`` breakpoint (``{"type": "ephemeral", "ttl"?}``), or None."""
    raw = block.get("cache_control")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "ephemeral":
        raise InvalidRequestError(
            f"{where}.cache_control: expected {{'type': 'ephemeral'}}", param=f"{where}.cache_control"
        )
    ttl = raw.get("ttl")
    if (ttl is not None and not isinstance(ttl, str)) or set(raw) - {"type", "ttl"}:
        raise InvalidRequestError(f"{where}.cache_control: only 'type' and 'ttl' (a string) are allowed",
                                  param=f"{where}.cache_control")
    return CacheControl(ttl=ttl)


def _decode_image(source: Any, where: str) -> ImagePart:
    if not isinstance(source, dict):
        raise InvalidRequestError(f"{where}: Field required", param=where)
    try:
        if source.get("type") == "base64":
            return ImagePart(data=source.get("data"), media_type=source.get("media_type"))
        if source.get("type") == "url":
            return ImagePart(url=source.get("url"))
    except ValueError as exc:
        raise InvalidRequestError(f"{where}: {exc}", param=where) from exc
    raise InvalidRequestError(f"{where}.type: unsupported image source {source.get('type')!r}", param=where)


def _decode_tool_use(block: dict[str, Any], where: str) -> ToolCall:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise InvalidRequestError(f"{where}: tool_use needs id and name", param=where)
    args = block.get("input")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise InvalidRequestError(f"{where}.input: must be an object", param=f"{where}.input")
    return ToolCall(id=block["id"], name=block["name"], arguments=args, cache_control=_decode_cache(block, where))


def _decode_tool_result(block: dict[str, Any], where: str, tool_names: dict[str, str]) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise InvalidRequestError(f"{where}.tool_use_id: Field required", param=f"{where}.tool_use_id")
    raw = block.get("content")
    if raw is None:
        parts: list[ContentPart] = []
    elif isinstance(raw, str):
        parts = [TextPart(text=raw)]
    elif isinstance(raw, list):
        parts = [_decode_block(b, f"{where}.content.{k}") for k, b in enumerate(raw)]
    else:
        raise InvalidRequestError(f"{where}.content: must be a string or a list", param=f"{where}.content")
    return Message(
        role="tool",
        content=parts,
        tool_call_id=call_id,
        name=tool_names.get(call_id),
        is_error=bool(block.get("is_error", False)),
        cache_control=_decode_cache(block, where),
    )


def _decode_metadata(metadata: Any, fields: dict[str, Any], options: dict[str, Any]) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidRequestError("metadata must be an object", param="metadata")
    rest = dict(metadata)
    user = rest.pop("user_id", None)
    if user is not None:
        fields["user"] = str(user)
    if rest:
        options["metadata"] = rest


def _decode_thinking(thinking: Any, fields: dict[str, Any], options: dict[str, Any]) -> None:
    if thinking is None:
        return
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise InvalidRequestError("thinking.budget_tokens: Field required", param="thinking.budget_tokens")
        fields["reasoning"] = Reasoning(budget_tokens=budget)
        rest = {k: v for k, v in thinking.items() if k not in ("type", "budget_tokens")}
        if rest:
            options["thinking"] = rest
        return
    options["thinking"] = thinking  # adaptive / disabled / future modes pass through untouched


def _decode_output_config(config: Any, fields: dict[str, Any], options: dict[str, Any]) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise InvalidRequestError("output_config must be an object", param="output_config")
    rest = dict(config)
    effort = rest.get("effort")
    if effort in _EFFORTS:
        rest.pop("effort")
        current: Reasoning | None = fields.get("reasoning")
        fields["reasoning"] = Reasoning(effort=effort, budget_tokens=current.budget_tokens if current else None)
    fmt = rest.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        rest.pop("format")
        fields["response_format"] = ResponseFormat(type="json_schema", json_schema=fmt["schema"])
    if rest:
        options["output_config"] = rest


def _decode_tools(tools: Any) -> tuple[list[ToolSpec], list[Any]]:
    """Custom tools become ToolSpecs; Anthropic server tools (web search, bash…) pass through."""
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list", param="tools")
    specs: list[ToolSpec] = []
    server: list[Any] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequestError("each tool must be an object", param=f"tools.{i}")
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            server.append(tool)
            continue
        if not isinstance(tool.get("name"), str):
            raise InvalidRequestError(f"tools.{i}.name: Field required", param=f"tools.{i}.name")
        schema = tool["input_schema"]
        if not isinstance(schema, dict):
            raise InvalidRequestError(f"tools.{i}.input_schema: must be an object", param=f"tools.{i}.input_schema")
        try:
            specs.append(
                ToolSpec(
                    name=tool["name"], description=tool.get("description"), parameters=schema,
                    strict=tool.get("strict"), cache_control=_decode_cache(tool, f"tools.{i}"),
                )
            )
        except ValueError:
            raise InvalidRequestError(
                f"tools.{i}.input_schema: must be a JSON Schema with type 'object'", param=f"tools.{i}.input_schema"
            ) from None
    return specs, server


def _decode_tool_choice(choice: Any, fields: dict[str, Any], options: dict[str, Any]) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise InvalidRequestError("tool_choice must be an object", param="tool_choice")
    kind = choice.get("type")
    mapped: ToolChoice
    if kind == "auto":
        mapped = "auto"
    elif kind == "any":
        mapped = "required"
    elif kind == "none":
        mapped = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        mapped = NamedToolChoice(name=choice["name"])
    else:
        options["tool_choice"] = choice
        return
    fields["tool_choice"] = mapped
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None:
        fields["parallel_tool_calls"] = not disable


# ---------------------------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------------------------
def finish_reason(stop_reason: str | None) -> FinishReason:
    return _STOP_TO_FINISH.get(stop_reason or "end_turn", "stop")


def decode_usage(usage: dict[str, Any] | None) -> Usage:
    """Anthropic counts cache reads/writes apart from ``input_tokens``; canonical input includes them."""
    usage = usage or {}
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    details = usage.get("output_tokens_details") or {}
    creation = usage.get("cache_creation") or {}
    return Usage(
        input_tokens=(usage.get("input_tokens") or 0) + read + write,
        output_tokens=usage.get("output_tokens") or 0,
        cached_input_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=creation.get("ephemeral_1h_input_tokens") or 0,
        reasoning_tokens=details.get("thinking_tokens") or 0,
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.cache_write_1h_tokens:  # the split by lifetime, which prices differ on
        hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        out["cache_creation"] = {"ephemeral_5m_input_tokens": usage.cache_write_tokens - hour,
                                 "ephemeral_1h_input_tokens": hour}
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def decode_response(body: dict[str, Any]) -> ChatResponse:
    """A ``/v1/messages`` answer (``type: message``) as a canonical response."""
    if body.get("type") == "error":
        err = body.get("error") or {}
        raise _error_from_type(err.get("type"), err.get("message") or "", orjson.dumps(body).decode())
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    for block in body.get("content") or []:
        kind = block.get("type")
        if kind == "tool_use":
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {}))
        elif kind == "text":
            parts.append(TextPart(text=block.get("text") or ""))
        elif kind == "thinking":
            parts.append(ThinkingPart(text=block.get("thinking") or "", signature=block.get("signature")))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart(redacted=True, data=block.get("data")))
        # server tool blocks (web search results…) have no canonical form and are skipped
    stop_reason = body.get("stop_reason")
    return ChatResponse(
        id=body.get("id") or "",
        model=body.get("model") or "",
        message=Message(role="assistant", content=parts, tool_calls=calls),
        finish_reason=finish_reason(stop_reason),
        usage=decode_usage(body.get("usage")),
        raw_finish_reason=stop_reason,
        stop_sequence=body.get("stop_sequence"),
    )


def stop_reason_for(reason: FinishReason, raw: str | None, stop_sequence: str | None) -> str:
    """The wire stop_reason: the native one when it agrees with the canonical reason."""
    if raw in _STOP_TO_FINISH and _STOP_TO_FINISH[raw] == reason:
        return raw
    if reason == "stop" and stop_sequence is not None:
        return "stop_sequence"
    return _FINISH_TO_STOP[reason]


def encode_response(response: ChatResponse) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        _encode_part(p) for p in response.message.content if not isinstance(p, ImagePart)
    ]
    content.extend(_encode_tool_use(c, cache=False) for c in response.message.tool_calls)  # requests only
    stop = stop_reason_for(response.finish_reason, response.raw_finish_reason, response.stop_sequence)
    return {
        "id": response.id or _new_id(),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": response.stop_sequence if stop == "stop_sequence" else None,
        "usage": encode_usage(response.usage),
    }


def _new_id() -> str:
    return "msg_" + secrets.token_hex(12)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
_CREDIT_EXHAUSTED = re.compile(r"credit balance is too low", re.IGNORECASE)


def _error_from_type(
    kind: str | None, message: str, body: str | None, status: int | None = None, headers: Any = None
) -> EPError:
    code = status or _ERROR_STATUS.get(kind or "", 500)
    if code == 400 and _CREDIT_EXHAUSTED.search(message):
        # Anthropic reports an empty prepaid balance as a 400; it is the same condition as OpenAI's
        # insufficient_quota, so routing can move on to another provider instead of failing the call.
        return QuotaExceededError(message, provider=PROVIDER, upstream_status=code, upstream_body=body)
    return error_for_status(code, message, provider=PROVIDER, body=body, headers=headers, upstream_type=kind)


def decode_error(status: int, body: bytes, headers: Any) -> EPError:
    """``{"type": "error", "error": {"type", "message"}}`` (or anything else a proxy sent) → EPError."""
    text = body.decode("utf-8", errors="replace") if body else ""
    kind: str | None = None
    message = ""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        kind = data["error"].get("type")
        message = str(data["error"].get("message") or "")
    if not message:
        message = text[:500] or f"anthropic returned HTTP {status}"
    return _error_from_type(kind, message, text, status=status, headers=headers)


def error_type(err: EPError) -> str:
    for cls, wire in _ERROR_TYPES:
        if isinstance(err, cls):
            return wire
    return "api_error"


def encode_error(err: EPError) -> tuple[int, dict[str, Any]]:
    """Anthropic's error body; overloads answer 529 there, as the real API (and its SDK) expect."""
    status = 529 if isinstance(err, OverloadedError) else err.status_code
    return status, {"type": "error", "error": {"type": error_type(err), "message": err.message}}


# ---------------------------------------------------------------------------------------------
# streams: wire -> canonical
# ---------------------------------------------------------------------------------------------
class StreamDecoder:
    """Anthropic SSE events → canonical events; usage and finish are emitted at ``message_stop``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._blocks: dict[int, dict[str, Any]] = {}
        self._tool_count = 0
        self._done = False

    def feed(self, sse: SSEEvent) -> list[StreamEvent]:
        if not sse.data or sse.event == "ping":
            return []
        data = sse.json()
        if not isinstance(data, dict):
            raise ValueError("stream event is not an object")
        kind = data.get("type") or sse.event
        if kind == "error" or sse.event == "error":
            err = data.get("error") or {}
            raise _error_from_type(err.get("type"), str(err.get("message") or "stream error"), sse.data)
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler is not None else []

    def finish(self) -> list[StreamEvent]:
        return []

    def _on_message_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        message = data.get("message") or {}
        self._usage = dict(message.get("usage") or {})
        return [StartEvent(id=message.get("id") or "", model=message.get("model") or self.model)]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        index = data.get("index", len(self._blocks))
        block = data.get("content_block") or {}
        kind = block.get("type")
        state: dict[str, Any] = {"type": kind}
        self._blocks[index] = state
        if kind == "text" and block.get("text"):
            return [TextDelta(text=block["text"])]
        if kind == "thinking" and (block.get("thinking") or block.get("signature")):
            return [ThinkingDelta(text=block.get("thinking") or "", signature=block.get("signature") or None)]
        if kind == "redacted_thinking":
            return [ThinkingDelta(redacted=True, data=block.get("data"))]
        if kind == "tool_use":
            state.update(
                tool_index=self._tool_count, id=block.get("id") or "", name=block.get("name") or "", json=[]
            )
            state["initial"] = block.get("input") or {}
            self._tool_count += 1
            return [ToolCallStart(index=state["tool_index"], id=state["id"], name=state["name"])]
        return []

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        state = self._blocks.get(data.get("index", -1), {})
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(text=delta.get("text") or "")] if delta.get("text") else []
        if kind == "thinking_delta":
            return [ThinkingDelta(text=delta.get("thinking") or "")] if delta.get("thinking") else []
        if kind == "signature_delta":
            return [ThinkingDelta(signature=delta.get("signature"))]
        if kind == "input_json_delta" and state.get("type") == "tool_use":
            piece = delta.get("partial_json") or ""
            if not piece:
                return []
            state["json"].append(piece)
            return [ToolCallDelta(index=state["tool_index"], arguments=piece)]
        return []

    def _on_content_block_stop(self, data: dict[str, Any]) -> list[StreamEvent]:
        state = self._blocks.get(data.get("index", -1), {})
        if state.get("type") != "tool_use" or state.get("closed"):
            return []
        state["closed"] = True
        raw = "".join(state["json"])
        call = ToolCall(id=state["id"], name=state["name"], arguments=state["initial"])
        if raw:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                call.arguments = parsed
            else:
                call.arguments, call.raw_arguments = {}, raw
        return [ToolCallEnd(index=state["tool_index"], tool_call=call)]

    def _on_message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta") or {}
        if "stop_reason" in delta:
            self._stop_reason = delta.get("stop_reason")
        if "stop_sequence" in delta:
            self._stop_sequence = delta.get("stop_sequence")
        # message_delta usage is cumulative: it overwrites, and absent fields keep message_start's value.
        for key, value in (data.get("usage") or {}).items():
            if value is not None:
                self._usage[key] = value
        return []

    def _on_message_stop(self, data: dict[str, Any]) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [
            UsageEvent(usage=decode_usage(self._usage)),
            FinishEvent(
                reason=finish_reason(self._stop_reason),
                raw_reason=self._stop_reason,
                stop_sequence=self._stop_sequence,
            ),
        ]


# ---------------------------------------------------------------------------------------------
# streams: canonical -> wire
# ---------------------------------------------------------------------------------------------
class WireTap(WireTapBase):
    """Anthropic events forwarded as bytes (``WireFrame``) to a client that speaks this format too.

    A text ``content_block_delta`` (the bulk of a stream) and ``ping`` are forwarded without building
    canonical events; every other event also goes through the full :class:`StreamDecoder`, whose
    events (start, tool calls, usage and finish at ``message_stop``) follow the frame for metering and
    routing, and are ignored by whoever serves the frames. Errors raise exactly as in the decoder;
    empty deltas are dropped, as the canonical path drops them. Usage crosses as the upstream wrote
    it (input tokens in ``message_start``, its own extra fields), where the canonical encoder can
    only report zeros at the start and the totals at the end.
    """

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        super().__init__()
        self._decoder = StreamDecoder(model)

    format = FORMAT

    def read(self, event: str | None, data: bytes) -> Plain | list[StreamEvent]:
        if not data:
            return []
        if event == "ping":
            return [WireFrame(format=FORMAT, data=b"event: ping\ndata: " + data + b"\n\n", text="")]
        if event == "content_block_delta":
            text = self._text(event, orjson.loads(data))
            if text is not None:
                return (_framed(event, data), text) if text else []
        events = self._decoder.feed(SSEEvent(data=data.decode("utf-8", errors="replace"), event=event))
        if not events and event == "content_block_delta":
            return []  # an empty delta: nothing the canonical path would send either
        return _after_start(WireFrame(format=FORMAT, data=_framed(event, data), text=""), events)

    def plain(self, event: str | None, data: bytes) -> Plain | None:
        if event != "content_block_delta" or not data:
            return None
        text = self._text(event, orjson.loads(data))
        return (_framed(event, data), text) if text else None

    @staticmethod
    def _text(event: str, parsed: Any) -> str | None:
        """A ``text_delta`` event's text (maybe empty), or ``None`` for any other delta."""
        delta = parsed.get("delta") if isinstance(parsed, dict) else None
        if isinstance(delta, dict) and delta.get("type") == "text_delta" and parsed.get("type") == event:
            text = delta.get("text")
            if isinstance(text, str):
                return text
        return None

    def finish(self) -> list[StreamEvent]:
        return self._decoder.finish()


def _framed(event: str | None, data: bytes) -> bytes:
    return (b"event: " + event.encode() + b"\ndata: " if event else b"data: ") + data + b"\n\n"


class StreamEncoder:
    """Canonical events → the exact Anthropic event sequence.

    ``message_start`` (+ ``ping``), then one content block per run of text / thinking / tool call, then
    ``message_delta`` (stop reason + cumulative usage) and ``message_stop``. Tool calls whose argument
    deltas arrive interleaved (OpenAI-style parallel calls) are queued and replayed one block at a time,
    since an Anthropic block cannot be reopened once another has started.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._stopped = False
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" | "tool"
        self._open_tool: int | None = None
        self._signed = False
        self._usage = Usage()
        self._tools: dict[int, dict[str, Any]] = {}
        self._queue: list[int] = []

    # -- public ---------------------------------------------------------------------------------
    def encode(self, event: StreamEvent) -> bytes:
        if self._stopped:
            return b""
        out: list[bytes] = []
        if not isinstance(event, StartEvent | ErrorEvent) and not self._started:
            out.append(self._message_start(StartEvent(id=_new_id(), model=self.model)))
        if isinstance(event, StartEvent):
            if not self._started:
                out.append(self._message_start(event))
        elif isinstance(event, TextDelta):
            if event.text:
                if self._open != "text":
                    self._close(out)
                    self._open_block(out, {"type": "text", "text": ""}, "text")
                out.append(self._delta({"type": "text_delta", "text": event.text}))
        elif isinstance(event, ThinkingDelta):
            self._thinking(event, out)
        elif isinstance(event, ToolCallStart):
            self._tool_start(event.index, event.id, event.name, out)
        elif isinstance(event, ToolCallDelta):
            self._tool_delta(event, out)
        elif isinstance(event, ToolCallEnd):
            self._tool_end(event, out)
        elif isinstance(event, UsageEvent):
            self._usage = event.usage
        elif isinstance(event, FinishEvent):
            self._close(out)
            self._flush_tools(out)
            stop = stop_reason_for(event.reason, event.raw_reason, event.stop_sequence)
            delta = {"stop_reason": stop, "stop_sequence": event.stop_sequence if stop == "stop_sequence" else None}
            out.append(frame({"type": "message_delta", "delta": delta, "usage": encode_usage(self._usage)},
                             "message_delta"))
            out.append(frame({"type": "message_stop"}, "message_stop"))
            self._stopped = True
        elif isinstance(event, ErrorEvent):
            kind = _TYPE_BY_CODE.get(event.error_type, "api_error")
            out.append(frame({"type": "error", "error": {"type": kind, "message": event.message}}, "error"))
            self._stopped = True
        return b"".join(out)

    def finish(self) -> bytes:
        """Anthropic streams need no trailer after ``message_stop``."""
        return b""

    # -- blocks ---------------------------------------------------------------------------------
    def _message_start(self, event: StartEvent) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": event.id or _new_id(),
            "type": "message",
            "role": "assistant",
            "model": event.model or self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": 0},
        }
        return frame({"type": "message_start", "message": message}, "message_start") + frame(
            {"type": "ping"}, "ping"
        )

    def _open_block(self, out: list[bytes], block: dict[str, Any], kind: str) -> None:
        self._index += 1
        self._open = kind
        out.append(frame({"type": "content_block_start", "index": self._index, "content_block": block},
                         "content_block_start"))

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return frame({"type": "content_block_delta", "index": self._index, "delta": delta}, "content_block_delta")

    def _close(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        if self._open == "tool" and self._open_tool is not None:
            tool = self._tools[self._open_tool]
            if not tool["sent_args"] and tool["call"] is not None and tool["call"].arguments:
                out.append(self._delta({"type": "input_json_delta",
                                        "partial_json": orjson.dumps(tool["call"].arguments).decode()}))
            tool["closed"] = True
            self._open_tool = None
        out.append(frame({"type": "content_block_stop", "index": self._index}, "content_block_stop"))
        self._open = None

    def _thinking(self, event: ThinkingDelta, out: list[bytes]) -> None:
        if event.redacted:
            self._close(out)
            self._open_block(out, {"type": "redacted_thinking", "data": event.data or ""}, "redacted")
            self._close(out)
            return
        if self._open != "thinking" or self._signed:
            self._close(out)
            self._open_block(out, {"type": "thinking", "thinking": "", "signature": ""}, "thinking")
            self._signed = False
        if event.text:
            out.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        if event.signature is not None:
            out.append(self._delta({"type": "signature_delta", "signature": event.signature}))
            self._signed = True

    # -- tool calls -----------------------------------------------------------------------------
    def _tool_start(self, index: int, call_id: str, name: str, out: list[bytes]) -> None:
        self._tools[index] = {"id": call_id, "name": name, "args": [], "sent_args": False, "call": None,
                              "closed": False}
        if self._open == "tool":
            self._queue.append(index)
            return
        self._close(out)
        self._open_tool_block(index, out)

    def _open_tool_block(self, index: int, out: list[bytes]) -> None:
        tool = self._tools[index]
        self._open_block(out, {"type": "tool_use", "id": tool["id"], "name": tool["name"], "input": {}}, "tool")
        self._open_tool = index
        if tool["args"]:
            out.append(self._delta({"type": "input_json_delta", "partial_json": "".join(tool["args"])}))
            tool["sent_args"] = True

    def _tool_delta(self, event: ToolCallDelta, out: list[bytes]) -> None:
        tool = self._tools.get(event.index)
        if tool is None or tool["closed"]:
            return
        if self._open_tool == event.index:
            out.append(self._delta({"type": "input_json_delta", "partial_json": event.arguments}))
            tool["sent_args"] = True
        else:
            tool["args"].append(event.arguments)

    def _tool_end(self, event: ToolCallEnd, out: list[bytes]) -> None:
        if event.index not in self._tools:
            self._tool_start(event.index, event.tool_call.id, event.tool_call.name, out)
        tool = self._tools[event.index]
        tool["call"] = event.tool_call
        if self._open_tool == event.index:
            self._close(out)
            self._advance_queue(out)

    def _advance_queue(self, out: list[bytes]) -> None:
        """Open queued tool calls in order; ones already ended are emitted and closed at once."""
        while self._queue and self._open is None:
            index = self._queue.pop(0)
            self._open_tool_block(index, out)
            if self._tools[index]["call"] is not None:
                self._close(out)

    def _flush_tools(self, out: list[bytes]) -> None:
        self._advance_queue(out)
        self._close(out)
        if self._queue:
            self._flush_tools(out)
