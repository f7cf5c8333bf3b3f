"""OpenAI Responses API wire format ⇄ canonical model, in both directions.

The gateway's ``/v1/responses`` surface uses :func:`decode_request`, :func:`encode_response` and
:class:`StreamEncoder`; the OpenAI adapter configured with ``api: responses`` uses
:func:`encode_request`, :func:`decode_response` and :class:`StreamDecoder`. Errors share the chat
codec's OpenAI error shape.

How the wire maps onto the canonical model:

* ``instructions`` is the leading system message; ``input`` items become messages. Consecutive
  assistant-side items (``reasoning``, an assistant ``message``, ``function_call``) fold into one
  assistant message, a new one starting when text or reasoning follows a function call.
* A ``reasoning`` item is a :class:`ThinkingPart`: its summary text is the thinking text and its
  ``encrypted_content`` the signature, so Anthropic thinking signatures survive a round trip
  through a Responses client that carries reasoning items back.

Deliberate losses (the wire has no place for them, or the canonical model has none):

* ``store``, ``previous_response_id``, ``metadata``, ``include``, ``truncation`` and the other
  server-state fields are the serving gateway's business (it pops them before decoding); the
  decoder ignores them, it never forwards them to a provider of another format.
* OpenAI-hosted tools (``web_search``, ``file_search``, ``mcp``...), ``custom`` tools and tool
  ``namespace`` groups are skipped (the surface lists them in ``x-ep-dropped-params``): they run
  inside OpenAI or need OpenAI's grammar support, which other providers do not have.
* ``text.verbosity`` and ``reasoning.summary`` are dropped; ``Message.is_error`` on tool results
  and Gemini text signatures have no field; redacted thinking travels as a reasoning item with
  only ``encrypted_content``.
* Canonical ``stop`` and ``seed`` have no Responses spelling: encoding them is a 400, not a drop.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ..errors import EPError, InvalidRequestError, UnsupportedParameterError
from ..model import (
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
)
from . import openai_chat
from .openai_chat import arguments_text, parse_arguments
from .passthrough import apply_extras, split_unknown
from .sse import SSEEvent, frame

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

# Errors look the same on both OpenAI APIs.
decode_error = openai_chat.decode_error
encode_error = openai_chat.encode_error

# Wire keys decode_request understands; anything else is a provider option that passes through.
_KNOWN_KEYS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
        "temperature", "top_p", "max_output_tokens", "reasoning", "user", "stream", "prompt_cache_key",
    }
)
# Server-state and presentation fields with no canonical meaning: ignored by the codec (the serving
# gateway reads store/previous_response_id/metadata itself), never sent to another provider.
IGNORED_KEYS = frozenset(
    {
        "store", "previous_response_id", "metadata", "include", "truncation", "background",
        "service_tier", "prompt_cache_retention", "safety_identifier", "top_logprobs",
        "stream_options", "conversation", "max_tool_calls", "client_metadata",
    }
)
_EFFORTS = ("minimal", "low", "medium", "high")


def _invalid(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


# ---------------------------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------------------------
def wire_usage(usage: Usage) -> dict[str, Any]:
    input_details = {"cached_tokens": usage.cached_input_tokens, "cache_write_tokens": usage.cache_write_tokens}
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": input_details,
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def decode_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("input_tokens_details") or {}
    output = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cached_input_tokens=_int(details.get("cached_tokens")),
        cache_write_tokens=_int(details.get("cache_write_tokens")),
        reasoning_tokens=_int(output.get("reasoning_tokens")),
    )


# ---------------------------------------------------------------------------------------------
# request pieces shared by both directions
# ---------------------------------------------------------------------------------------------
def _encode_image(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
    return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}


def _encode_thinking(part: ThinkingPart, item_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "id": item_id, "summary": []}
    if part.redacted:
        item["encrypted_content"] = part.data or ""
        return item
    if part.text:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if part.signature is not None:
        item["encrypted_content"] = part.signature
    return item


def _decode_thinking(item: dict[str, Any]) -> ThinkingPart:
    texts = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
    if not texts:  # some servers return the raw reasoning text instead of a summary
        texts = [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
    text = "".join(t for t in texts if isinstance(t, str))
    encrypted = item.get("encrypted_content")
    encrypted = encrypted if isinstance(encrypted, str) else None
    if not text and encrypted is not None and not item.get("summary") and not item.get("content"):
        return ThinkingPart(redacted=True, data=encrypted)
    return ThinkingPart(text=text, signature=encrypted)


def _encode_tool_call(call: ToolCall, item_id: str | None = None, status: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function_call", "call_id": call.id, "name": call.name,
                            "arguments": arguments_text(call)}
    if item_id is not None:
        item["id"] = item_id
    if status is not None:
        item["status"] = status
    return item


def _encode_output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _encode_message(msg: Message, index: int) -> list[dict[str, Any]]:
    """One canonical message → its input items."""
    if msg.role == "tool":
        texts = [p for p in msg.content if isinstance(p, TextPart)]
        output: Any = texts[0].text if len(texts) == 1 else [{"type": "input_text", "text": p.text} for p in texts]
        if not texts:
            output = ""
        return [{"type": "function_call_output", "call_id": msg.tool_call_id or "", "output": output}]
    if msg.role != "assistant":
        content: list[dict[str, Any]] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                content.append({"type": "input_text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append(_encode_image(part))
        return [{"type": "message", "role": msg.role, "content": content}]
    items: list[dict[str, Any]] = []
    texts_open: list[dict[str, Any]] | None = None
    for k, part in enumerate(msg.content):
        if isinstance(part, ThinkingPart):
            items.append(_encode_thinking(part, f"rs_{index}_{k}"))
            texts_open = None
        elif isinstance(part, TextPart):
            if texts_open is None:
                texts_open = []
                items.append({"type": "message", "role": "assistant", "content": texts_open})
            texts_open.append({"type": "output_text", "text": part.text, "annotations": []})
    items.extend(_encode_tool_call(call) for call in msg.tool_calls)
    return items


def _encode_tool(tool: ToolSpec) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description is not None:
        wire["description"] = tool.description
    wire["parameters"] = tool.parameters
    # The Responses API defaults ``strict`` to true; canonical None means "not asked", i.e. false.
    wire["strict"] = bool(tool.strict)
    return wire


def _encode_tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, NamedToolChoice):
        return {"type": "function", "name": choice.name}
    return choice


def _encode_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    wire: dict[str, Any] = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.json_schema or {}}
    if fmt.description is not None:
        wire["description"] = fmt.description
    if fmt.strict is not None:
        wire["strict"] = fmt.strict
    return wire


def encode_request(req: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """Canonical request → a Responses API body (``store: false``: the gateway keeps the state)."""
    if req.stop:
        raise UnsupportedParameterError("the Responses API has no stop sequences", param="stop")
    if req.seed is not None:
        raise UnsupportedParameterError("the Responses API has no seed", param="seed")
    messages = list(req.messages)
    body: dict[str, Any] = {"model": req.model}
    first = messages[0] if messages else None
    if first is not None and first.role == "system" and all(isinstance(p, TextPart) for p in first.content):
        body["instructions"] = first.text
        messages = messages[1:]
    items: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        items.extend(_encode_message(msg, i))
    body["input"] = items
    if req.tools:
        body["tools"] = [_encode_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.response_format is not None:
        body["text"] = {"format": _encode_response_format(req.response_format)}
    for key in ("temperature", "top_p", "user", "prompt_cache_key"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.reasoning is not None and (effort := openai_chat._effort(req.reasoning)) is not None:
        body["reasoning"] = {"effort": effort}
        body["include"] = ["reasoning.encrypted_content"]
    body["store"] = False
    if stream:
        body["stream"] = True
    return apply_extras(body, req, "openai_responses")


# ---------------------------------------------------------------------------------------------
# decoding a served request
# ---------------------------------------------------------------------------------------------
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
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid("a text part needs a string 'text'", f"{where}.text")
            parts.append(TextPart(text=text))
        elif kind == "refusal":
            parts.append(TextPart(text=str(part.get("refusal") or "")))
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise UnsupportedParameterError("only input_image parts with image_url are supported",
                                                param=f"{where}.image_url")
            detail = part.get("detail")
            image = openai_chat._decode_data_url_image(url, detail if detail in ("auto", "low", "high") else None)
            parts.append(image)
        else:
            raise UnsupportedParameterError(f"content part type '{kind}' is not supported", param=f"{where}.type")
    return parts


def _decode_output(output: Any, param: str) -> list[ContentPart]:
    if isinstance(output, str):
        return [TextPart(text=output)] if output else []
    return _decode_content(output, param)


class _InputFolder:
    """Fold input items into canonical messages (assistant-side items into one assistant turn)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.call_names: dict[str, str] = {}

    def _assistant(self, *, for_calls: bool) -> Message:
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant" and (for_calls or not last.tool_calls):
            return last
        msg = Message(role="assistant")
        self.messages.append(msg)
        return msg

    def add(self, item: Any, i: int) -> None:
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid("an input item must be an object", param)
        kind = item.get("type", "message")
        if kind == "message":
            self._message(item, param)
        elif kind == "function_call":
            name, call_id = item.get("name"), item.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise _invalid("a function_call item needs name and call_id", param)
            raw = item.get("arguments")
            arguments, raw_arguments = parse_arguments(raw if isinstance(raw, str) else None)
            self.call_names[call_id] = name
            self._assistant(for_calls=True).tool_calls.append(
                ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw_arguments)
            )
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _invalid("a function_call_output item needs call_id", f"{param}.call_id")
            content = _decode_output(item.get("output"), f"{param}.output")
            self.messages.append(
                Message(role="tool", tool_call_id=call_id, name=self.call_names.get(call_id), content=content)
            )
        elif kind == "reasoning":
            self._assistant(for_calls=False).content.append(_decode_thinking(item))
        else:
            raise UnsupportedParameterError(f"input item type '{kind}' is not supported", param=f"{param}.type")

    def _message(self, item: dict[str, Any], param: str) -> None:
        role = item.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise _invalid(f"unknown role {role!r}", f"{param}.role")
        parts = _decode_content(item.get("content"), f"{param}.content")
        if role == "assistant":
            self._assistant(for_calls=False).content.extend(parts)
        else:
            self.messages.append(Message(role=role, content=parts))


def dropped_tools(body: dict[str, Any]) -> list[str]:
    """``tools[i]`` entries no provider can serve (hosted tools, namespaces): skipped, not refused."""
    raw = body.get("tools")
    if not isinstance(raw, list):
        return []
    return [f"tools[{k}]" for k, tool in enumerate(raw) if _is_hosted(tool)]


def _is_hosted(tool: Any) -> bool:
    """A client may send any JSON as ``type``: only a string can name a hosted tool (a set test on a
    list or object would raise)."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    return isinstance(kind, str) and kind in _HOSTED


# OpenAI-hosted tools and tool groups: they run inside OpenAI, so other providers cannot serve them.
_HOSTED = frozenset(
    {
        "web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use_preview",
        "image_generation", "mcp", "local_shell", "namespace", "tool_search", "custom",
    }
)


def _decode_tools(raw: Any) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("tools must be an array", "tools")
    tools: list[ToolSpec] = []
    for k, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if _is_hosted(tool):
            continue  # reported by the surface as dropped (see dropped_tools)
        if kind != "function":
            raise UnsupportedParameterError(f"tool type {kind!r} is not supported (function tools only)",
                                            param=f"tools[{k}].type")
        name = tool.get("name")
        if not isinstance(name, str):
            raise _invalid("a function tool needs a name", f"tools[{k}].name")
        spec: dict[str, Any] = {"name": name, "description": tool.get("description"), "strict": tool.get("strict")}
        if isinstance(tool.get("parameters"), dict):
            spec["parameters"] = tool["parameters"]
        tools.append(ToolSpec(**spec))
    return tools


def _decode_tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return NamedToolChoice(name=raw["name"])
    raise _invalid("tool_choice must be auto, none, required or a named function", "tool_choice")


def _decode_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("'text' must be an object", "text")
    fmt = raw.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise _invalid("text.format.type must be text, json_object or json_schema", "text.format")
    if fmt["type"] != "json_schema":
        return ResponseFormat(type=fmt["type"])
    if not isinstance(fmt.get("schema"), dict):
        raise _invalid("a json_schema format needs a schema object", "text.format.schema")
    return ResponseFormat(type="json_schema", name=fmt.get("name"), json_schema=fmt["schema"], strict=fmt.get("strict"),
                          description=fmt.get("description"))


def _decode_reasoning(raw: Any, options: dict[str, Any]) -> Reasoning | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("'reasoning' must be an object", "reasoning")
    effort = raw.get("effort")
    if effort in _EFFORTS:
        return Reasoning(effort=effort)
    if effort is not None:
        options["reasoning"] = {"effort": effort}  # e.g. "none"/"xhigh": not canonical, still honoured
    return None


def decode_request(body: dict[str, Any], *, model: str = "") -> ChatRequest:
    """A Responses API body → canonical request. Unknown keys are kept for a Responses upstream only (``Passthrough``)."""
    if not isinstance(body, dict):
        raise _invalid("the request body must be a JSON object", "body")
    named = model or body.get("model")  # a model named outside the body (the route) wins
    if not isinstance(named, str) or not named:
        raise _invalid("'model' is required", "model")
    folder = _InputFolder()
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        folder.messages.append(Message(role="system", content=instructions))
    elif instructions is not None and not isinstance(instructions, str):
        raise _invalid("'instructions' must be a string", "instructions")
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        folder.messages.append(Message(role="user", content=raw_input))
    elif isinstance(raw_input, list):
        for i, item in enumerate(raw_input):
            folder.add(item, i)
    elif raw_input is not None:
        raise _invalid("'input' must be a string or an array of items", "input")
    options = {k: v for k, v in body.items() if k not in _KNOWN_KEYS and k not in IGNORED_KEYS}
    reasoning = _decode_reasoning(body.get("reasoning"), options)
    try:
        return ChatRequest(
            model=named,
            messages=folder.messages,
            tools=_decode_tools(body.get("tools")),
            tool_choice=_decode_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=body.get("parallel_tool_calls"),
            response_format=_decode_response_format(body.get("text")),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            max_tokens=body.get("max_output_tokens"),
            user=body.get("user"),
            prompt_cache_key=body.get("prompt_cache_key"),
            reasoning=reasoning,
            passthrough=split_unknown(options, "openai_responses"),
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first: dict[str, Any] = getattr(exc, "errors", lambda: [{}])()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise _invalid(f"invalid request: {first.get('msg', exc)}", param) from None


# ---------------------------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------------------------
def response_id(upstream_id: str | None) -> str:
    """Our ``resp_`` id: an upstream Responses id is kept, any other id gets a fresh one."""
    return upstream_id if upstream_id and upstream_id.startswith("resp_") else _new_id("resp")


def output_items(msg: Message, *, ids: bool = True) -> list[dict[str, Any]]:
    """An assistant message → ``output`` items (reasoning, message, function calls, in that order)."""
    items: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] | None = None
    for part in msg.content:
        if isinstance(part, ThinkingPart):
            items.append(_encode_thinking(part, _new_id("rs")))
            texts = None
        elif isinstance(part, TextPart):
            if texts is None:
                texts = []
                items.append({"id": _new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
                              "content": texts})
            texts.append(_encode_output_text(part.text))
    for call in msg.tool_calls:
        items.append(_encode_tool_call(call, _new_id("fc"), "completed"))
    return items


def _status(reason: FinishReason) -> tuple[str, dict[str, Any] | None]:
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def echo_fields(request: ChatRequest | None) -> dict[str, Any]:
    """Request parameters a Response object repeats back (tools, tool_choice, text format...)."""
    if request is None:
        return {"tools": [], "tool_choice": "auto", "parallel_tool_calls": True, "text": {"format": {"type": "text"}}}
    fmt = request.response_format
    instructions = None
    if request.messages and request.messages[0].role == "system":
        instructions = request.messages[0].text
    reasoning = openai_chat._effort(request.reasoning) if request.reasoning is not None else None
    return {
        "instructions": instructions,
        "tools": [_encode_tool(t) for t in request.tools],
        "tool_choice": _encode_tool_choice(request.tool_choice) if request.tool_choice is not None else "auto",
        "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
        "text": {"format": _encode_response_format(fmt) if fmt is not None else {"type": "text"}},
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_tokens,
        "reasoning": {"effort": reasoning, "summary": None},
        "user": request.user,
    }


def response_object(
    rid: str, model: str, created: float, *, status: str, output: list[dict[str, Any]],
    usage: Usage | None, incomplete: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
    request: ChatRequest | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": wire_usage(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }
    body.update(echo_fields(request))
    return body


def encode_response(resp: ChatResponse, request: ChatRequest | None = None) -> dict[str, Any]:
    """Canonical response → a Responses API ``response`` object (request fields echoed when given)."""
    status, incomplete = _status(resp.finish_reason)
    return response_object(
        response_id(resp.id), resp.model, resp.created or int(time.time()), status=status,
        output=output_items(resp.message), usage=resp.usage, incomplete=incomplete, request=request,
    )


def _decode_finish(status: Any, incomplete: Any, has_calls: bool) -> FinishReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    if status == "failed":
        return "error"
    return "tool_calls" if has_calls else "stop"


def decode_response(body: dict[str, Any]) -> ChatResponse:
    """A Responses API ``response`` object → canonical response."""
    if body.get("status") == "failed" and isinstance(body.get("error"), dict):
        raise _decode_failed_error(body["error"])
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            parts.extend(_decode_content(item.get("content"), "output.content"))
        elif kind == "reasoning":
            parts.append(_decode_thinking(item))
        elif kind == "function_call":
            raw = item.get("arguments")
            arguments, raw_arguments = parse_arguments(raw if isinstance(raw, str) else None)
            calls.append(ToolCall(id=str(item.get("call_id") or item.get("id") or ""), name=str(item.get("name") or ""),
                                  arguments=arguments, raw_arguments=raw_arguments))
    status = body.get("status")
    created = body.get("created_at")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        created=int(created) if isinstance(created, int | float) else 0,
        message=Message(role="assistant", content=parts, tool_calls=calls),
        finish_reason=_decode_finish(status, body.get("incomplete_details"), bool(calls)),
        raw_finish_reason=status if isinstance(status, str) else None,
        usage=decode_usage(body.get("usage")),
    )


def _decode_failed_error(error: dict[str, Any]) -> EPError:
    """``response.failed``/``error`` payloads carry a code, not an HTTP status: infer one."""
    code = str(error.get("code") or "")
    status = 429 if "rate_limit" in code else 400 if code.startswith(("invalid", "image", "unsupported")) else 500
    wire = {"message": error.get("message") or "the upstream response failed", "type": error.get("type"),
            "code": code or None, "param": error.get("param")}
    return openai_chat._error_from_parts(status, wire, orjson.dumps(error).decode(), None)


# ---------------------------------------------------------------------------------------------
# streams: served (canonical → Responses events)
# ---------------------------------------------------------------------------------------------
class _Item:
    """An output item being streamed: its index, wire id and accumulated content."""

    __slots__ = ("args", "args_sent", "call", "id", "kind", "output_index", "signature", "text")

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind, self.output_index, self.id = kind, output_index, item_id
        self.text: list[str] = []
        self.args: list[str] = []
        self.args_sent = False
        self.call: ToolCall | None = None
        self.signature: str | None = None


class StreamEncoder:
    """Canonical events → the Responses API's typed SSE events, each with its ``sequence_number``.

    ``response.created`` and ``response.in_progress`` open the stream; text, reasoning and each
    function call are output items announced with ``output_item.added`` and closed with
    ``output_item.done``; ``response.completed`` (or ``response.incomplete``) carries the whole
    response with usage at the end. A failure is a ``response.failed`` with the error.
    ``final`` holds the completed response object once the trailer has been produced.
    """

    def __init__(
        self, model: str, *, request: ChatRequest | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.model = model
        self.request = request
        self.extra = extra or {}
        self.id = _new_id("resp")
        self.created = int(time.time())
        self.seq = 0
        self._started = False
        self._items: list[dict[str, Any]] = []  # finished output items, by output index
        self._open_text: _Item | None = None
        self._open_thinking: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._usage: Usage | None = None
        self._reason: FinishReason | None = None
        self.final: dict[str, Any] | None = None

    # -- framing --------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return frame(body, event=kind)

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        body = response_object(self.id, self.model, self.created, status=status, output=extra.pop("output", []),
                               usage=extra.pop("usage", None), request=self.request, **extra)
        body.update(self.extra)
        return body

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        body = self._response("in_progress")
        return self._event("response.created", response=body) + self._event("response.in_progress", response=body)

    def _slot(self) -> int:
        self._items.append({})
        return len(self._items) - 1

    # -- items ----------------------------------------------------------------------------------
    def _open_message(self) -> bytes:
        if self._open_text is not None:
            return b""
        out = self._close_thinking()
        item = self._open_text = _Item("message", self._slot(), _new_id("msg"))
        wire = {"id": item.id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        out += self._event("response.output_item.added", output_index=item.output_index, item=wire)
        out += self._event("response.content_part.added", item_id=item.id, output_index=item.output_index,
                           content_index=0, part=_encode_output_text(""))
        return out

    def _close_message(self) -> bytes:
        item, self._open_text = self._open_text, None
        if item is None:
            return b""
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        out = self._event("response.output_text.done", **where, text=text, logprobs=[])
        out += self._event("response.content_part.done", **where, part=_encode_output_text(text))
        wire = {"id": item.id, "type": "message", "status": "completed", "role": "assistant",
                "content": [_encode_output_text(text)]}
        self._items[item.output_index] = wire
        return out + self._event("response.output_item.done", output_index=item.output_index, item=wire)

    def _open_reasoning(self) -> bytes:
        if self._open_thinking is not None:
            return b""
        out = self._close_message()
        item = self._open_thinking = _Item("reasoning", self._slot(), _new_id("rs"))
        wire = {"id": item.id, "type": "reasoning", "summary": []}
        out += self._event("response.output_item.added", output_index=item.output_index, item=wire)
        out += self._event("response.reasoning_summary_part.added", item_id=item.id, output_index=item.output_index,
                           summary_index=0, part={"type": "summary_text", "text": ""})
        return out

    def _close_thinking(self) -> bytes:
        item, self._open_thinking = self._open_thinking, None
        if item is None:
            return b""
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.output_index, "summary_index": 0}
        out = self._event("response.reasoning_summary_text.done", **where, text=text)
        out += self._event("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text})
        wire = _encode_thinking(ThinkingPart(text=text, signature=item.signature), item.id)
        self._items[item.output_index] = wire
        return out + self._event("response.output_item.done", output_index=item.output_index, item=wire)

    def _redacted(self, data: str | None) -> bytes:
        out = self._close_message() + self._close_thinking()
        index = self._slot()
        wire = _encode_thinking(ThinkingPart(redacted=True, data=data or ""), _new_id("rs"))
        self._items[index] = wire
        out += self._event("response.output_item.added", output_index=index, item=wire)
        return out + self._event("response.output_item.done", output_index=index, item=wire)

    def _call_start(self, index: int, call_id: str, name: str) -> bytes:
        out = self._close_message() + self._close_thinking()
        item = self._calls[index] = _Item("function_call", self._slot(), _new_id("fc"))
        item.call = ToolCall(id=call_id, name=name)
        wire = {"id": item.id, "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name,
                "arguments": ""}
        return out + self._event("response.output_item.added", output_index=item.output_index, item=wire)

    def _call_delta(self, index: int, text: str) -> bytes:
        item = self._calls.get(index)
        if item is None or not text:
            return b""
        item.args.append(text)
        item.args_sent = True
        return self._event("response.function_call_arguments.delta", item_id=item.id,
                           output_index=item.output_index, delta=text)

    def _call_end(self, index: int, call: ToolCall | None) -> bytes:
        item = self._calls.get(index)
        out = b""
        if item is None:
            assert call is not None
            out += self._call_start(index, call.id, call.name)
            item = self._calls[index]
        if item.kind == "done":
            return b""
        final = call or ToolCall(id=item.call.id if item.call else "", name=item.call.name if item.call else "")
        if call is None:
            arguments, raw = parse_arguments("".join(item.args))
            final = final.model_copy(update={"arguments": arguments, "raw_arguments": raw})
        text = "".join(item.args) if item.args else arguments_text(final)
        if not item.args_sent and text:
            out += self._call_delta(index, text)
        item.kind = "done"
        out += self._event("response.function_call_arguments.done", item_id=item.id,
                           output_index=item.output_index, arguments=text)
        wire = _encode_tool_call(final.model_copy(update={"raw_arguments": text}), item.id, "completed")
        self._items[item.output_index] = wire
        return out + self._event("response.output_item.done", output_index=item.output_index, item=wire)

    # -- StreamEncoder --------------------------------------------------------------------------
    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StartEvent):
            self.model = event.model or self.model
            return self._start()
        out = self._start()
        if isinstance(event, TextDelta):
            if not event.text:
                return out
            out += self._open_message()
            assert self._open_text is not None
            self._open_text.text.append(event.text)
            return out + self._event("response.output_text.delta", item_id=self._open_text.id,
                                     output_index=self._open_text.output_index, content_index=0,
                                     delta=event.text, logprobs=[])
        if isinstance(event, ThinkingDelta):
            return out + self._thinking(event)
        if isinstance(event, ToolCallStart):
            return out + self._call_start(event.index, event.id, event.name)
        if isinstance(event, ToolCallDelta):
            return out + self._call_delta(event.index, event.arguments)
        if isinstance(event, ToolCallEnd):
            return out + self._call_end(event.index, event.tool_call)
        if isinstance(event, UsageEvent):
            self._usage = event.usage
        elif isinstance(event, FinishEvent):
            self._reason = event.reason
        elif isinstance(event, ErrorEvent):
            return out + self._failed(event.error_type, event.message)
        return out

    def _thinking(self, event: ThinkingDelta) -> bytes:
        if event.redacted:
            return self._redacted(event.data)
        out = b""
        if event.text:
            out += self._open_reasoning()
            assert self._open_thinking is not None
            self._open_thinking.text.append(event.text)
            out += self._event("response.reasoning_summary_text.delta", item_id=self._open_thinking.id,
                               output_index=self._open_thinking.output_index, summary_index=0, delta=event.text)
        if event.signature is not None:
            out += self._open_reasoning()
            assert self._open_thinking is not None
            self._open_thinking.signature = event.signature
            out += self._close_thinking()
        return out

    def _close_all(self) -> bytes:
        out = self._close_message() + self._close_thinking()
        for index in sorted(self._calls):
            out += self._call_end(index, None)
        return out

    def finish(self) -> bytes:
        """``response.completed`` (or ``.incomplete``) with the whole response and its usage."""
        out = self._start() + self._close_all()
        reason = self._reason or ("tool_calls" if self._calls else "stop")
        status, incomplete = _status(reason)
        self.final = self._response(status, output=[i for i in self._items if i], usage=self._usage or Usage(),
                                    incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, response=self.final)

    def _failed(self, error_type: str, message: str, code: str | None = None) -> bytes:
        error = {"code": code or ("rate_limit_exceeded" if "rate_limit" in error_type else "server_error"),
                 "message": message}
        body = self._response("failed", output=[i for i in self._items if i], usage=self._usage, error=error)
        return self._event("response.failed", response=body)

    def error(self, err: EPError) -> bytes:
        """A failure after the stream started: ``response.failed`` carrying the error."""
        return self._start() + self._failed(err.type, err.message, err.code)


# ---------------------------------------------------------------------------------------------
# streams: upstream (Responses events → canonical)
# ---------------------------------------------------------------------------------------------
class StreamDecoder:
    """A Responses API event stream → canonical events.

    Function calls are numbered in the order they are announced; their argument deltas are matched
    by item id. Usage and the finish come from ``response.completed``/``response.incomplete``.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._calls: dict[str, int] = {}  # item id → canonical index
        self._ended: set[int] = set()
        self._thinking_open = False
        self._done = False

    def _start(self, response: Any) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        body = response if isinstance(response, dict) else {}
        return [StartEvent(id=str(body.get("id") or ""), model=str(body.get("model") or self.model))]

    def feed(self, sse: SSEEvent) -> list[StreamEvent]:
        data = sse.data.strip()
        if self._done or not data or data == "[DONE]":
            return []
        event = orjson.loads(data)
        if not isinstance(event, dict):
            raise ValueError("stream event is not an object")
        kind = event.get("type") or sse.event
        out = self._start(event.get("response"))
        if kind == "response.output_text.delta":
            text = event.get("delta")
            if isinstance(text, str) and text:
                out.append(TextDelta(text=text))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            text = event.get("delta")
            if isinstance(text, str) and text:
                self._thinking_open = True
                out.append(ThinkingDelta(text=text))
        elif kind == "response.output_item.added":
            out.extend(self._item_added(event.get("item") or {}))
        elif kind == "response.function_call_arguments.delta":
            index = self._calls.get(str(event.get("item_id")))
            delta = event.get("delta")
            if index is not None and isinstance(delta, str) and delta:
                out.append(ToolCallDelta(index=index, arguments=delta))
        elif kind == "response.output_item.done":
            out.extend(self._item_done(event.get("item") or {}))
        elif kind in ("response.completed", "response.incomplete"):
            out.extend(self._complete(event.get("response") or {}))
        elif kind == "response.failed":
            response = event.get("response") or {}
            raise _decode_failed_error(response.get("error") or {"message": "the upstream response failed"})
        elif kind == "error":
            raise _decode_failed_error(event)
        return out

    def _item_added(self, item: dict[str, Any]) -> list[StreamEvent]:
        if item.get("type") != "function_call":
            return []
        index = len(self._calls)
        self._calls[str(item.get("id") or item.get("call_id"))] = index
        return [ToolCallStart(index=index, id=str(item.get("call_id") or ""), name=str(item.get("name") or ""))]

    def _item_done(self, item: dict[str, Any]) -> list[StreamEvent]:
        kind = item.get("type")
        if kind == "function_call":
            index = self._calls.get(str(item.get("id") or item.get("call_id")))
            if index is None:
                index = len(self._calls)
                self._calls[str(item.get("id"))] = index
            self._ended.add(index)
            raw = item.get("arguments")
            arguments, raw_arguments = parse_arguments(raw if isinstance(raw, str) else None)
            call = ToolCall(id=str(item.get("call_id") or ""), name=str(item.get("name") or ""), arguments=arguments,
                            raw_arguments=raw_arguments)
            return [ToolCallEnd(index=index, tool_call=call)]
        if kind == "reasoning":
            part = _decode_thinking(item)
            was_open, self._thinking_open = self._thinking_open, False
            if part.redacted:
                return [ThinkingDelta(redacted=True, data=part.data)]
            if not was_open and part.text:  # a server that sent no deltas: the whole text at once
                return [ThinkingDelta(text=part.text, signature=part.signature)]
            if part.signature is not None:
                return [ThinkingDelta(text="", signature=part.signature)]
        return []

    def _complete(self, response: dict[str, Any]) -> list[StreamEvent]:
        self._done = True
        reason = _decode_finish(response.get("status"), response.get("incomplete_details"), bool(self._calls))
        return [UsageEvent(usage=decode_usage(response.get("usage"))),
                FinishEvent(reason=reason, raw_reason=str(response.get("status") or "completed"))]

    def finish(self) -> list[StreamEvent]:
        return []
