"""OpenAI chat-completions wire format ⇄ canonical model, in both directions.

Providers use :func:`encode_request`, :func:`decode_response`, :class:`StreamDecoder` and
:func:`decode_error`; the gateway's ``/v1/chat/completions`` surface uses the mirror half.

Deliberate losses (the wire has no place for them):

* ``Message.is_error`` on tool results is dropped on encode; OpenAI has no field for it.
* Thinking signatures and redacted thinking are dropped; thinking text travels as
  ``reasoning_content`` (the de-facto field of OpenAI-compatible servers such as vLLM and DeepSeek)
  in responses and streams only, never in requests, because several servers reject it there.
* ``refusal`` is decoded as ordinary text, so a streamed refusal folds to the same answer as a
  non-streamed one.
* ``Reasoning.budget_tokens`` becomes the nearest ``reasoning_effort`` when no effort is given.
* Cache breakpoints (``cache_control`` on parts and tools) are dropped on encode: OpenAI caches
  prefixes on its own; ``prompt_cache_key`` is its one caching hint (``ChatRequest.prompt_cache_key``).
  A served request's content parts may carry Anthropic-style ``cache_control`` (the convention other
  gateways use), which is decoded so an Anthropic upstream receives it.
* Our ``RequestMetadata`` is never sent upstream; the wire ``metadata`` (OpenAI stored completions)
  is a provider option and passes through untouched.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

from ..errors import (
    EPError,
    InvalidRequestError,
    QuotaExceededError,
    UnsupportedParameterError,
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
FORMAT = "openai"

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
]

# Wire keys decode_request understands; anything else is a provider option that passes through.
_KNOWN_KEYS = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "user",
        "reasoning_effort", "stream", "stream_options", "n", "functions", "function_call", "prompt_cache_key",
        "frequency_penalty", "presence_penalty",
    }
)
_EFFORTS = ("minimal", "low", "medium", "high")
# Reasoning models reject ``max_tokens`` and want ``max_completion_tokens``.
_REASONING_MODEL = re.compile(r"^(?:.*/)?(?:o\d|gpt-5)", re.IGNORECASE)
_DATA_URL = re.compile(r"^data:(?P<mt>[^;,]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)

_FINISH_FROM_WIRE: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
# "error" has no OpenAI spelling; clients see a plain stop (the error itself travels separately).
_FINISH_TO_WIRE: dict[str, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}


def _invalid(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------
def parse_arguments(text: str | None) -> tuple[dict[str, Any], str | None]:
    """Argument text → (arguments, raw_arguments). Empty text means no arguments; anything that
    is not a JSON object is kept verbatim so nothing the model produced is lost."""
    if not text:
        return {}, None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}, text
    if isinstance(value, dict):
        return value, None
    return {}, text


def arguments_text(call: ToolCall) -> str:
    return call.raw_arguments if call.raw_arguments is not None else orjson.dumps(call.arguments).decode()


def _encode_tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments_text(call)}}


def _encode_usage(usage: Usage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cached_input_tokens, "audio_tokens": 0}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def decode_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    usage: Usage = Usage.__pydantic_validator__.validate_python({  # ``Usage(**...)``: see decode_response
        "input_tokens": _int(raw.get("prompt_tokens")),
        "output_tokens": _int(raw.get("completion_tokens")),
        "cached_input_tokens": _int(prompt.get("cached_tokens")),
        "cache_write_tokens": _int(prompt.get("cache_write_tokens")),
        "reasoning_tokens": _int(completion.get("reasoning_tokens")),
    })
    return usage


def _decode_finish(value: Any) -> FinishReason:
    return _FINISH_FROM_WIRE.get(value, "stop") if isinstance(value, str) else "stop"


# ---------------------------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------------------------
def _encode_image(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
    image: dict[str, Any] = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _encode_content(parts: list[ContentPart], *, allow_images: bool) -> str | list[dict[str, Any]]:
    """A lone text part becomes a plain string (what every client sends); otherwise a part array."""
    if len(parts) == 1 and type(parts[0]) is TextPart:  # the common case, per message: no list made
        return parts[0].text
    visible = [p for p in parts if not isinstance(p, ThinkingPart)]
    if not visible:
        return ""
    if len(visible) == 1 and isinstance(visible[0], TextPart):
        return visible[0].text
    out: list[dict[str, Any]] = []
    for part in visible:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        elif allow_images:
            out.append(_encode_image(part))
    return out


def _encode_message(msg: Message) -> dict[str, Any]:
    if msg.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": msg.tool_call_id or "",
            "content": _encode_content(msg.content, allow_images=False),
        }
    wire: dict[str, Any] = {"role": msg.role}
    if msg.role == "assistant":
        text = _encode_content(msg.content, allow_images=False)
        wire["content"] = text if (text or not msg.tool_calls) else None
        if msg.tool_calls:
            wire["tool_calls"] = [_encode_tool_call(c) for c in msg.tool_calls]
    else:
        wire["content"] = _encode_content(msg.content, allow_images=msg.role == "user")
    if msg.name is not None:
        wire["name"] = msg.name
    return wire


def _effort(reasoning: Reasoning) -> str | None:
    if reasoning.effort is not None:
        return reasoning.effort
    budget = reasoning.budget_tokens
    if budget is None:
        return None
    if budget <= 1024:
        return "low"
    return "medium" if budget <= 8192 else "high"


def _encode_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, Any] = {"name": fmt.name or "response"}
    if fmt.description is not None:
        schema["description"] = fmt.description
    schema["schema"] = fmt.json_schema or {}
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": schema}


def _encode_tool(tool: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def _encode_tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, NamedToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def encode_request(req: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """Canonical request → OpenAI body; pass-through fields only add, never override (see passthrough)."""
    body: dict[str, Any] = {"model": req.model, "messages": [_encode_message(m) for m in req.messages]}
    if req.tools:
        body["tools"] = [_encode_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.response_format is not None:
        body["response_format"] = _encode_response_format(req.response_format)
    for key in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "stop", "seed", "user",
                "prompt_cache_key"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.top_k is not None:
        drop_field("top_k", "openai")
    if req.max_tokens is not None:
        key = "max_completion_tokens" if _REASONING_MODEL.match(req.model) else "max_tokens"
        body[key] = req.max_tokens
    if req.reasoning is not None and (effort := _effort(req.reasoning)) is not None:
        body["reasoning_effort"] = effort
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return apply_extras(body, req, "openai")


def _decode_data_url_image(url: str, detail: Any) -> ImagePart:
    match = _DATA_URL.match(url)
    if match is None:
        return ImagePart(url=url, detail=detail)
    return ImagePart(data=match["data"], media_type=match["mt"], detail=detail)


def _decode_content(content: Any, param: str) -> list[ContentPart]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [TextPart(text=content)]
    if not isinstance(content, list):
        raise _invalid("content must be a string or an array of content parts", param)
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _invalid("a content part must be an object", where)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid("a text part needs a string 'text'", f"{where}.text")
            parts.append(TextPart(text=text, cache_control=_decode_cache(part, where)))
        elif kind == "image_url":
            image = part.get("image_url")
            if isinstance(image, str):
                image = {"url": image}
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _invalid("an image_url part needs image_url.url", f"{where}.image_url")
            detail = image.get("detail")
            if detail not in (None, "auto", "low", "high"):
                raise _invalid("image detail must be auto, low or high", f"{where}.image_url.detail")
            image_part = _decode_data_url_image(image["url"], detail)
            image_part.cache_control = _decode_cache(part, where)
            parts.append(image_part)
        elif kind == "refusal":
            parts.append(TextPart(text=str(part.get("refusal") or "")))
        else:
            raise UnsupportedParameterError(f"content part type '{kind}' is not supported", param=f"{where}.type")
    return parts


def _decode_cache(part: dict[str, Any], where: str) -> CacheControl | None:
    """``cache_control`` on a content part: not OpenAI's, but the convention of gateways (LiteLLM,
    OpenRouter) for reaching Anthropic's prompt cache through this format. Decoded, never encoded."""
    raw = part.get("cache_control")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "ephemeral" or not isinstance(raw.get("ttl", ""), str):
        raise _invalid("cache_control must be {\"type\": \"ephemeral\"} with an optional string ttl",
                       f"{where}.cache_control")
    return CacheControl(ttl=raw.get("ttl"))


def _decode_tool_calls(raw: Any, param: str) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("tool_calls must be an array", param)
    calls: list[ToolCall] = []
    for k, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _invalid("a tool call needs function.name", f"{param}[{k}].function")
        arguments, raw_arguments = parse_arguments(fn.get("arguments"))
        calls.append(
            ToolCall(id=str(call.get("id") or f"call_{k}"), name=fn["name"], arguments=arguments,
                     raw_arguments=raw_arguments)
        )
    return calls


_ROLES = ("system", "developer", "user", "assistant", "tool")  # a tuple: a role of any type compares


def _decode_message(raw: Any, i: int, call_names: dict[str, str]) -> Message:
    # Per message of a conversation, so the common case (text content) builds no error location.
    if not isinstance(raw, dict):
        raise _invalid("a message must be an object", f"messages[{i}]")
    role = raw.get("role")
    if role == "function":  # legacy function result: the name doubles as the call id
        fn_name = str(raw.get("name") or "")
        return Message(role="tool", tool_call_id=fn_name, name=fn_name,
                       content=_decode_content(raw.get("content"), f"messages[{i}].content"))
    if role not in _ROLES:
        raise _invalid(f"unknown role {role!r}", f"messages[{i}].role")
    text = raw.get("content")
    if isinstance(text, str):  # what ``_decode_content`` makes of a string
        # (objects made by their validators, as ``Model(**fields)`` makes them: see decode_response)
        content: list[ContentPart] = [TextPart.__pydantic_validator__.validate_python({"text": text})] if text else []
    else:
        content = _decode_content(text, f"messages[{i}].content")
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str):
            raise _invalid("a tool message needs tool_call_id", f"messages[{i}].tool_call_id")
        # The wire has no tool name; recover it from the call it answers (Gemini needs it).
        return Message(role="tool", content=content, tool_call_id=call_id, name=call_names.get(call_id))
    name = raw.get("name")
    if role != "assistant":  # only the fields a message sets are handed to the model (fewer to validate)
        fields: dict[str, Any] = {"role": role, "content": content, "name": name} if isinstance(name, str) \
            else {"role": role, "content": content}
        message: Message = Message.__pydantic_validator__.validate_python(fields)
        return message
    param = f"messages[{i}]"
    tool_calls = _decode_tool_calls(raw.get("tool_calls"), f"{param}.tool_calls")
    legacy = raw.get("function_call")
    if isinstance(legacy, dict) and not tool_calls:
        tool_calls = _decode_tool_calls([{"id": legacy.get("name"), "function": legacy}], param)
    for call in tool_calls:
        call_names[call.id] = call.name
    return Message(role=role, content=content, tool_calls=tool_calls, name=name if isinstance(name, str) else None)


def _decode_tools(raw: Any, legacy: Any, builtin: list[dict[str, Any]]) -> list[ToolSpec]:
    """Function tools become ToolSpecs; other tool types (``custom``…) go to ``builtin``, OpenAI-only."""
    if raw is None and legacy is not None:
        raw = [{"type": "function", "function": f} for f in legacy] if isinstance(legacy, list) else legacy
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("tools must be an array", "tools")
    tools: list[ToolSpec] = []
    for k, tool in enumerate(raw):
        if isinstance(tool, dict) and isinstance(tool.get("type"), str) and tool["type"] != "function":
            builtin.append(tool)
            continue
        if not isinstance(tool, dict):
            raise _invalid("a tool must be an object", f"tools[{k}]")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _invalid("a tool needs function.name", f"tools[{k}].function.name")
        spec: dict[str, Any] = {"name": fn["name"], "description": fn.get("description"), "strict": fn.get("strict")}
        if fn.get("parameters") is not None:
            spec["parameters"] = fn["parameters"]
        try:
            tools.append(ToolSpec(**spec))
        except ValueError:
            raise _invalid("parameters must be a JSON Schema object (type 'object')",
                           f"tools[{k}].function.parameters") from None
    return tools


def _decode_tool_choice(raw: Any, param: str) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict):
        fn = raw.get("function")
        name = fn.get("name") if isinstance(fn, dict) else raw.get("name")
        if isinstance(name, str):
            return NamedToolChoice(name=name)
    raise _invalid("tool_choice must be auto, none, required or a named function", param)


def _decode_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise _invalid("response_format.type must be text, json_object or json_schema", "response_format")
    if raw["type"] != "json_schema":
        return ResponseFormat(type=raw["type"])
    spec = raw.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise _invalid("json_schema needs an object with name and schema", "response_format.json_schema")
    return ResponseFormat(
        type="json_schema", name=spec.get("name"), json_schema=spec.get("schema"), strict=spec.get("strict"),
        description=spec.get("description"),
    )


# Wire keys that map to the canonical field of the same name as they are (checked by the model).
_SAME_NAME = frozenset({
    "parallel_tool_calls", "temperature", "top_p", "stop", "seed", "user", "frequency_penalty", "presence_penalty",
    "prompt_cache_key",
})


def decode_request(body: dict[str, Any], *, model: str = "") -> ChatRequest:
    """OpenAI body → canonical request. Unknown keys ride along as an OpenAI-only passthrough.

    Only the fields the body sets are handed to the model (one pass over the body's keys): a typical
    request sets two or three of twenty, and every field given is one more to validate."""
    if not isinstance(body, dict):
        raise _invalid("the request body must be a JSON object", "body")
    named = model or body.get("model")  # a model named outside the body (the route) wins
    if not isinstance(named, str) or not named:
        raise _invalid("'model' is required", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _invalid("'messages' must be a non-empty array", "messages")
    if body.get("n") not in (None, 1):
        raise UnsupportedParameterError("only n=1 is supported", param="n")
    call_names: dict[str, str] = {}
    messages = [_decode_message(m, i, call_names) for i, m in enumerate(raw_messages)]
    builtin: list[dict[str, Any]] = []

    fields: dict[str, Any] = {"model": named, "messages": messages}
    options: dict[str, Any] = {}
    for key, value in body.items():
        if key in _SAME_NAME:
            if value is not None:
                fields[key] = value
        elif key not in _KNOWN_KEYS:
            options[key] = value
    for key in ("max_completion_tokens", "max_tokens"):
        _check_cap(body.get(key), key)
    effort = body.get("reasoning_effort")
    if effort in _EFFORTS:
        fields["reasoning"] = Reasoning(effort=effort)
    elif effort is not None:
        options["reasoning_effort"] = effort  # e.g. "none"/"xhigh": not canonical, still honoured
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    try:
        # In the order the model's fields were built before (a client error names the first bad one).
        tools, legacy = body.get("tools"), body.get("functions")
        if tools is not None or legacy is not None:
            fields["tools"] = _decode_tools(tools, legacy, builtin)
        choice = body.get("tool_choice", body.get("function_call"))
        if choice is not None:
            fields["tool_choice"] = _decode_tool_choice(choice, "tool_choice")
        response_format = body.get("response_format")
        if response_format is not None:
            fields["response_format"] = _decode_response_format(response_format)
        if options or builtin:
            fields["passthrough"] = split_unknown(options, "openai", tools=builtin)
        request: ChatRequest = ChatRequest.__pydantic_validator__.validate_python(fields)  # ``ChatRequest(**fields)``
        return request
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first: dict[str, Any] = getattr(exc, "errors", lambda: [{}])()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or "body"
        if param == "max_tokens" and "max_completion_tokens" in body:
            param = "max_completion_tokens"
        raise _invalid(f"invalid value for '{param}': {first.get('msg', exc)}", param) from None


def _check_cap(value: Any, param: str) -> None:
    """Both cap spellings are checked, even the one that loses, so neither carries junk."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _invalid(f"'{param}' must be a positive integer", param)


# ---------------------------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------------------------
def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def encode_response(resp: ChatResponse) -> dict[str, Any]:
    """Canonical response → an OpenAI ``chat.completion`` object."""
    msg = resp.message
    text = msg.text
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if (text or not msg.tool_calls) else None,
        "refusal": None,
        "annotations": [],
    }
    thinking = "".join(p.text for p in msg.thinking)
    if thinking:
        message["reasoning_content"] = thinking
    if msg.tool_calls:
        message["tool_calls"] = [_encode_tool_call(c) for c in msg.tool_calls]
    return {
        "id": resp.id or _completion_id(),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH_TO_WIRE[resp.finish_reason],
            }
        ],
        "usage": _encode_usage(resp.usage),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _reasoning_text(obj: dict[str, Any]) -> str | None:
    value = obj.get("reasoning_content")
    if value is None:
        value = obj.get("reasoning")
    return value if isinstance(value, str) else None


def decode_response(body: dict[str, Any]) -> ChatResponse:
    """An OpenAI ``chat.completion`` object → canonical response (first choice)."""
    choices = body.get("choices") or []
    choice = choices[0] if choices else {}
    raw_msg = choice.get("message") or {}
    parts: list[ContentPart] = []
    thinking = _reasoning_text(raw_msg)
    if thinking:
        parts.append(ThinkingPart(text=thinking))
    content = raw_msg.get("content")
    if isinstance(content, str):  # the usual answer: one text part
        if content:
            parts.append(TextPart.__pydantic_validator__.validate_python({"text": content}))
    elif content:
        parts.extend(_decode_content(content, "message.content"))
    refusal = raw_msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(TextPart(text=refusal))
    calls = _decode_tool_calls(raw_msg.get("tool_calls"), "message.tool_calls")
    legacy = raw_msg.get("function_call")
    if isinstance(legacy, dict) and not calls:
        calls = _decode_tool_calls([{"id": "call_0", "function": legacy}], "message.function_call")
    raw_reason = choice.get("finish_reason")
    # Each object is made by its model's own validator from the fields ``Model(**fields)`` would pass
    # it: the same validation and the same object, without ``BaseModel.__init__``'s Python frame and
    # keyword dictionary (about 0.3 us an object, four objects an answer). Only the fields the answer
    # sets are handed to the model (each one given is validated).
    message_fields: dict[str, Any] = {"role": "assistant", "content": parts}
    if calls:
        message_fields["tool_calls"] = calls
    response: ChatResponse = ChatResponse.__pydantic_validator__.validate_python({
        "id": str(body.get("id") or ""),
        "model": str(body.get("model") or ""),
        "created": _int(body.get("created")),
        "message": Message.__pydantic_validator__.validate_python(message_fields),
        "finish_reason": _decode_finish(raw_reason),
        "raw_finish_reason": raw_reason if isinstance(raw_reason, str) else None,
        "usage": decode_usage(body.get("usage")),
    })
    return response


# ---------------------------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------------------------
class _PendingCall:
    __slots__ = ("args", "id", "index", "name")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index, self.id, self.name = index, call_id, name
        self.args: list[str] = []


class StreamDecoder:
    """OpenAI ``chat.completion.chunk`` SSE events → canonical events.

    Tool-call fragments are keyed by their wire ``index``; the first fragment of a call carries its
    id and name. The finish is held back until the usage chunk (sent after the finish chunk when
    ``stream_options.include_usage`` is on) or ``[DONE]``, so usage always precedes the finish.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._calls: dict[int, _PendingCall] = {}
        self._by_id: dict[str, int] = {}
        self._ended = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False

    def feed(self, sse: SSEEvent) -> list[StreamEvent]:
        if self._done:
            return []
        data = sse.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._complete()
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("stream chunk is not an object")
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        """One chunk already parsed (by a wire tap, which reads every chunk's JSON first)."""
        if self._done:
            return []
        if chunk.get("error") is not None:
            raise _stream_error(chunk["error"])
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(StartEvent(id=str(chunk.get("id") or ""), model=str(chunk.get("model") or self.model)))
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            self._delta(choice.get("delta") or {}, out)
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
                out.extend(self._end_calls())
        if chunk.get("usage") is not None:
            self._usage = decode_usage(chunk["usage"])
            if self._finish is not None:
                out.extend(self._complete())
        return out

    def finish(self) -> list[StreamEvent]:
        """End of body without ``[DONE]``: complete only if the model said it finished."""
        if self._done or self._finish is None:
            return []
        return self._complete()

    # -- internals ------------------------------------------------------------------------------
    def _delta(self, delta: dict[str, Any], out: list[StreamEvent]) -> None:
        thinking = _reasoning_text(delta)
        if thinking:
            out.append(ThinkingDelta(text=thinking))
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                out.append(TextDelta(text=text))
        for fragment in delta.get("tool_calls") or []:
            self._tool_fragment(fragment, out)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_fragment({"index": 0, "function": legacy}, out)

    def _tool_fragment(self, fragment: dict[str, Any], out: list[StreamEvent]) -> None:
        fn = fragment.get("function") or {}
        call_id = fragment.get("id")
        wire_index = fragment.get("index")
        if wire_index is None:  # some compatible servers omit the index: fall back to the id
            wire_index = self._by_id.get(call_id, len(self._calls)) if call_id else max(self._calls, default=0)
        call = self._calls.get(wire_index)
        if call is None:
            index = len(self._calls)
            call = _PendingCall(index, str(call_id or f"call_{index}"), str(fn.get("name") or ""))
            self._calls[wire_index] = call
            if call_id:
                self._by_id[call_id] = wire_index
            out.append(ToolCallStart(index=index, id=call.id, name=call.name))
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            call.args.append(args)
            out.append(ToolCallDelta(index=call.index, arguments=args))

    def _end_calls(self) -> list[StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        events: list[StreamEvent] = []
        for call in sorted(self._calls.values(), key=lambda c: c.index):
            arguments, raw = parse_arguments("".join(call.args))
            tool_call = ToolCall(id=call.id, name=call.name, arguments=arguments, raw_arguments=raw)
            events.append(ToolCallEnd(index=call.index, tool_call=tool_call))
        return events

    def _complete(self) -> list[StreamEvent]:
        self._done = True
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(StartEvent(id="", model=self.model))
        out.extend(self._end_calls())
        out.append(UsageEvent(usage=self._usage or Usage()))
        raw = self._finish
        reason: FinishReason = _decode_finish(raw) if raw else ("tool_calls" if self._calls else "stop")
        out.append(FinishEvent(reason=reason, raw_reason=raw))
        return out


def _stream_error(raw: Any) -> EPError:
    """An ``{"error": ...}`` chunk: the status is implied by the error's type/code."""
    error = raw if isinstance(raw, dict) else {"message": str(raw)}
    kind = str(error.get("type") or "")
    code = str(error.get("code") or "")
    if "rate_limit" in code or kind in ("requests", "tokens", "rate_limit_error"):
        status = 429
    elif kind == "invalid_request_error":
        status = 400
    else:
        status = 500
    return _error_from_parts(status, error, orjson.dumps(raw).decode(), None)


class WireTap(WireTapBase):
    """OpenAI chunks forwarded as bytes (``WireFrame``) to a client that speaks this format too.

    The same-format fast path: a plain content chunk is parsed only to read its text and that it
    carries no finish, usage or tool call, and is never built into canonical events. Every other chunk
    (the first, tool calls, the finish, usage, ``[DONE]``, errors) also goes through the full
    :class:`StreamDecoder`, whose canonical events follow the frame: metering, routing and the
    completion check read those, and whoever serves the frames ignores them. Errors raise exactly as
    in the decoder. ``"usage": null`` is removed from the chunks that carry it (OpenAI adds it to every
    chunk once usage is asked for, which the gateway always does), and the usage-only chunk is not
    forwarded when the client did not ask for usage (``include_usage=False``): the client gets what
    the canonical encoder would send. ``[DONE]`` is the server's own trailer, not forwarded.
    """

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        super().__init__()
        self._decoder = StreamDecoder(model)
        self._include_usage = include_usage
        self._started = False

    format = FORMAT

    def read(self, event: str | None, data: bytes) -> Plain | list[StreamEvent]:
        chunk = orjson.loads(data) if data[:1] == b"{" else None
        if not isinstance(chunk, dict) or chunk.get("error") is not None:
            # [DONE], blank or odd data and errors: exactly as decoded
            return self._decoder.feed(SSEEvent(data=data.decode("utf-8", errors="replace"), event=event))
        if self._started:
            plain = self._plain(data, chunk)
            if plain is not None:
                return plain
        self._started = True
        events = self._decoder.feed_chunk(chunk)
        if not self._include_usage and chunk.get("usage") is not None and not chunk.get("choices"):
            return events  # the usage-only chunk the client did not ask for
        return _after_start(WireFrame(format=FORMAT, data=self._frame(data, chunk), text=""), events)

    def plain(self, event: str | None, data: bytes) -> Plain | None:
        chunk = orjson.loads(data) if data[:1] == b"{" else None
        if not isinstance(chunk, dict) or chunk.get("error") is not None:
            return None
        return self._plain(data, chunk)

    def _plain(self, data: bytes, chunk: dict[str, Any]) -> Plain | None:
        """A content-only chunk (one choice, no finish, usage or tool call) as its frame and text."""
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and len(choices) == 1 else None
        if (
            isinstance(choice, dict)
            and choice.get("finish_reason") is None
            and chunk.get("usage") is None
            and choice.get("index", 0) == 0
        ):
            delta = choice.get("delta")
            if isinstance(delta, dict) and delta.keys() <= _PLAIN_DELTA:
                text = delta.get("content")
                if isinstance(text, str) and text and not delta.get("refusal"):
                    return self._frame(data, chunk), text
        return None

    def finish(self) -> list[StreamEvent]:
        return self._decoder.finish()

    @staticmethod
    def _frame(raw: bytes, chunk: dict[str, Any]) -> bytes:
        if "usage" in chunk and chunk["usage"] is None:
            raw = raw.replace(b',"usage":null', b"", 1)
            if b'"usage"' in raw:  # spelled another way: re-encode without it
                raw = orjson.dumps({k: v for k, v in chunk.items() if k != "usage"})
        return b"data: " + raw + b"\n\n"


_PLAIN_DELTA = frozenset({"content", "role", "refusal"})


class StreamEncoder:
    """Canonical events → OpenAI ``chat.completion.chunk`` SSE frames, as OpenAI itself sends them:
    role in the first delta, tool-call deltas by index, a finish chunk, then (when usage is known)
    a usage chunk with empty ``choices``, then ``data: [DONE]``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._id: str | None = None  # made on first use: the upstream's start usually names it
        self.created = int(time.time())
        self._started = False
        self._usage: Usage | None = None
        self._finished = False
        self._args_sent: set[int] = set()
        self._announced: set[int] = set()

    @property
    def id(self) -> str:
        """The chunks' ``id``: the upstream's, else one of ours, made when first needed (a stream
        served as the upstream's own frames never encodes a chunk, and never needs one)."""
        if self._id is None:
            self._id = _completion_id()
        return self._id

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "service_tier": "default", "system_fingerprint": None, "choices": choices, **extra,
        }
        return frame(body)

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._delta({"role": "assistant", "content": "", "refusal": None})

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StartEvent):
            if event.id:
                self._id = event.id
            self.model = event.model or self.model
            return self._start()
        head = self._start()
        if isinstance(event, TextDelta):
            return head + (self._delta({"content": event.text}) if event.text else b"")
        if isinstance(event, ThinkingDelta):
            return head + (self._delta({"reasoning_content": event.text}) if event.text else b"")
        if isinstance(event, ToolCallStart):
            self._announced.add(event.index)
            call = {"index": event.index, "id": event.id, "type": "function",
                    "function": {"name": event.name, "arguments": ""}}
            return head + self._delta({"tool_calls": [call]})
        if isinstance(event, ToolCallDelta):
            if not event.arguments:
                return head
            self._args_sent.add(event.index)
            return head + self._delta(
                {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
            )
        if isinstance(event, ToolCallEnd):
            return head + self._end_call(event)
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return head + (self._usage_chunk() if self._finished else b"")
        if isinstance(event, FinishEvent):
            self._finished = True
            out = self._delta({}, _FINISH_TO_WIRE[event.reason])
            return head + out + (self._usage_chunk() if self._usage is not None else b"")
        if isinstance(event, ErrorEvent):
            return head + frame({"error": {"message": event.message, "type": event.error_type,
                                           "param": None, "code": None}})
        return head

    def _end_call(self, event: ToolCallEnd) -> bytes:
        """Calls a decoder only announced at the end are sent whole; missing arguments are filled in."""
        call = event.tool_call
        if event.index not in self._announced:
            self._announced.add(event.index)
            self._args_sent.add(event.index)
            wire = {"index": event.index, **_encode_tool_call(call)}
            return self._delta({"tool_calls": [wire]})
        if event.index in self._args_sent:
            return b""
        self._args_sent.add(event.index)
        text = arguments_text(call)
        return self._delta({"tool_calls": [{"index": event.index, "function": {"arguments": text}}]})

    def _usage_chunk(self) -> bytes:
        usage, self._usage = self._usage, None
        assert usage is not None
        return self._chunk([], usage=_encode_usage(usage))

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def _taxonomy_by_type() -> dict[str, type[EPError]]:
    found: dict[str, type[EPError]] = {}
    stack = list(EPError.__subclasses__())
    while stack:
        cls = stack.pop()
        found.setdefault(cls.type, cls)
        stack.extend(cls.__subclasses__())
    return found


_UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})


def _error_from_parts(status: int, error: dict[str, Any], text: str, headers: Any) -> EPError:
    message = error.get("message")
    kind = error.get("type")
    code = error.get("code")
    param = error.get("param")
    err = error_for_status(
        status,
        message if isinstance(message, str) else "",
        body=text,
        headers=headers,
        upstream_type=kind if isinstance(kind, str) else None,
        code=str(code) if code is not None else None,
        param=param if isinstance(param, str) else None,
    )
    target: type[EPError] | None = None
    if str(code) in _UNSUPPORTED_CODES and type(err) is InvalidRequestError:
        target = UnsupportedParameterError
    elif "insufficient_quota" in (str(code), kind) and not isinstance(err, QuotaExceededError):
        target = QuotaExceededError  # billing exhausted: a 429 that waiting does not cure
    elif isinstance(kind, str):
        # Our own error types (another gateway upstream) map back to the exact class.
        named = _taxonomy_by_type().get(kind)
        if named is not None and named.status_code == status and not isinstance(err, named):
            target = named
    if target is None:
        return err
    return target(
        err.message, upstream_status=status, upstream_body=err.upstream_body, retry_after=err.retry_after,
        param=err.param, code=err.code,
    )


def decode_error(status: int, body: bytes, headers: Any) -> EPError:
    """An OpenAI error answer (``{"error": {"message", "type", "code", "param"}}``) → taxonomy."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else str(body)
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    error: dict[str, Any]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
    elif isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        error = {"message": parsed["error"]}  # some compatible servers
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        error = parsed
    else:
        error = {"message": text[:500]}
    return _error_from_parts(status, error, text, headers)


# Codes OpenAI clients test for; our ``type`` stays the taxonomy code.
_DEFAULT_CODES: dict[str, str] = {
    "context_length_exceeded": "context_length_exceeded",
    "rate_limit_error": "rate_limit_exceeded",
    "unsupported_parameter": "unsupported_parameter",
    "content_filtered": "content_filter",
    "insufficient_quota": "insufficient_quota",
}


def encode_error(err: EPError) -> tuple[int, dict[str, Any]]:
    """The OpenAI error body for ``err`` and the HTTP status its class carries."""
    code = err.code or _DEFAULT_CODES.get(err.type)
    return err.status_code, {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": code}
    }
