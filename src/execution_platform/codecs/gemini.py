"""Gemini ``generateContent`` (Generative Language API v1beta) ⇄ canonical, in both directions.

Choices worth knowing (the wire cannot carry everything the canonical model can, and vice versa):

* The model is in the URL, not the body: :func:`decode_request` takes it as ``model=``.
* Tool parameters are sent as ``parametersJsonSchema`` (full JSON Schema, accepted by the current API
  and by google-genai ≥ 1.x as ``parameters_json_schema``); the older OpenAPI-subset ``parameters`` is
  still decoded (type names lower-cased). Structured output likewise uses ``responseJsonSchema``.
* Gemini has historically sent no tool-call ids. Missing ids are synthesized deterministically with the
  ``gcall_`` prefix (from the response id, call index, name and arguments in responses; from the turn
  and part position in requests), so decoding the same bytes twice yields the same ids. Synthesized ids
  are never put on the wire; real ids are. ``functionResponse`` parts without an id are matched back to
  the calls of the preceding model turn by name and order.
* Tool results: a tool message whose text is a compact JSON object is sent as that object; otherwise
  as ``{"output": text}`` (``{"error": text}`` when ``is_error``), the keys Google documents.
* Usage: ``output_tokens`` = ``candidatesTokenCount`` + ``thoughtsTokenCount`` (thoughts are billed as
  output, and other providers count reasoning inside output); ``reasoning_tokens`` = thoughts;
  ``input_tokens`` = ``promptTokenCount`` (+ ``toolUsePromptTokenCount``), cached share included.
* ``finishReason`` is ``STOP`` even when the model called tools; such answers get ``tool_calls``.
* Tool results carry text only (their image parts are dropped).
* Not representable on this wire and therefore dropped: ``parallel_tool_calls``, ``user``, tool
  ``strict``, image ``detail``, response-format name/description/strict, redacted thinking.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from .. import errors as _errors
from ..errors import (
    AuthenticationError,
    ContextLengthExceededError,
    EPError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    UnsupportedParameterError,
    UpstreamTimeoutError,
    error_for_status,
    parse_retry_after,
)
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
from .passthrough import apply_extras, drop_field, split_unknown
from .sse import SSEEvent, frame

SYNTH_PREFIX = "gcall_"

_FINISH_FROM_WIRE: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}
_FINISH_TO_WIRE: dict[str, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
_MODES_TO_WIRE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# generationConfig entry -> canonical field, and the reverse for naming a bad value.
_GEN_FIELDS = {
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_tokens",
    "stopSequences": "stop",
    "seed": "seed",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
}
# How a Gemini client spells canonical fields (bad values and dropped parameters are named this way).
PARAM_NAMES = {field: f"generationConfig.{wire}" for wire, field in _GEN_FIELDS.items()}
_EFFORTS = ("minimal", "low", "medium", "high")
_GEN_KEYS = {
    "temperature",
    "topP",
    "maxOutputTokens",
    "stopSequences",
    "seed",
    "topK",
    "frequencyPenalty",
    "presencePenalty",
    "candidateCount",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
}


# -- ids ------------------------------------------------------------------------------------------------
def is_synthesized(call_id: str | None) -> bool:
    """True for ids this codec invented; those never go on the wire."""
    return call_id is not None and call_id.startswith(SYNTH_PREFIX)


def response_call_id(response_id: str, index: int, name: str, args: Any) -> str:
    """Stable id for the ``index``-th call of a response: same response bytes, same id."""
    seed = orjson.dumps([response_id, index, name, args], option=orjson.OPT_SORT_KEYS)
    return SYNTH_PREFIX + hashlib.sha256(seed).hexdigest()[:24]


def request_call_id(turn: int, order: int) -> str:
    """Stable id for a call in request history: its position never changes as the conversation grows."""
    return f"{SYNTH_PREFIX}{turn}_{order}"


# -- small helpers ----------------------------------------------------------------------------------------
def _camel(obj: Any) -> Any:
    """One object level with snake_case keys turned lowerCamelCase.

    Google's JSON parser accepts proto field names too, and google-genai sends some nested fields that
    way (``thinking_config``, ``parameters_json_schema``). Applied only to structural levels, never to
    user data such as function arguments or JSON schemas."""
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        head, *rest = key.split("_") if isinstance(key, str) and "_" in key.strip("_") else [key]
        out[head + "".join(w[:1].upper() + w[1:] for w in rest) if rest else key] = value
    return out


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _openapi_to_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-subset ``Schema`` uses upper-case type names; JSON Schema wants lower-case."""
    if isinstance(schema, list):
        return [_openapi_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: _openapi_to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            out[key] = _openapi_to_json_schema(value)
        else:
            out[key] = value
    return out


def _compact_json_object(text: str) -> dict[str, Any] | None:
    """The object ``text`` encodes, only if ``text`` is exactly its compact serialization (lossless)."""
    if not text.startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or orjson.dumps(value).decode() != text:
        return None
    if (
        len(value) == 1
        and next(iter(value)) in ("output", "error")
        and isinstance(next(iter(value.values())), str)
    ):
        return None  # would be read back as a wrapped result
    return value


# -- requests: canonical -> wire ------------------------------------------------------------------------
def _encode_part(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        out: dict[str, Any] = {"text": part.text}
        if part.signature is not None:
            out["thoughtSignature"] = part.signature
        return out
    if isinstance(part, ThinkingPart):
        if part.redacted:
            return None  # an Anthropic-only payload Gemini cannot take
        out = {"text": part.text, "thought": True}
        if part.signature is not None:
            out["thoughtSignature"] = part.signature
        return out
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    url = part.url or ""
    match = re.match(r"data:([^;,]+);base64,(.*)$", url, re.S)
    if match:
        return {"inlineData": {"mimeType": match.group(1), "data": match.group(2)}}
    file_data: dict[str, Any] = {"fileUri": url}
    if part.media_type:
        file_data["mimeType"] = part.media_type
    return {"fileData": file_data}


def _encode_tool_call(call: ToolCall) -> dict[str, Any]:
    function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
    if call.raw_arguments is not None and not call.arguments:
        try:
            parsed = orjson.loads(call.raw_arguments)
        except orjson.JSONDecodeError:
            parsed = None
        function_call["args"] = parsed if isinstance(parsed, dict) else {}
    if call.id and not is_synthesized(call.id):
        function_call["id"] = call.id
    out: dict[str, Any] = {"functionCall": function_call}
    if call.signature is not None:
        out["thoughtSignature"] = call.signature
    return out


def _encode_tool_result(msg: Message, names: dict[str, str], index: int) -> dict[str, Any]:
    name = msg.name or names.get(msg.tool_call_id or "")
    if not name:
        raise _bad(
            f"messages[{index}]: a tool result needs the tool's name (Gemini requires it): set 'name' or answer "
            "a tool call made earlier in the conversation",
            f"messages[{index}].name",
        )
    text = msg.text
    obj = None if msg.is_error else _compact_json_object(text)
    response = obj if obj is not None else {"error" if msg.is_error else "output": text}
    out: dict[str, Any] = {"name": name, "response": response}
    if msg.tool_call_id and not is_synthesized(msg.tool_call_id):
        out["id"] = msg.tool_call_id
    return {"functionResponse": out}


def _encode_messages(messages: list[Message]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    pending_results: list[dict[str, Any]] = []

    def flush_results() -> None:
        if pending_results:
            contents.append({"role": "user", "parts": list(pending_results)})
            pending_results.clear()

    for index, msg in enumerate(messages):
        if msg.role == "tool":
            pending_results.append(_encode_tool_result(msg, names, index))
            continue
        flush_results()
        parts = [p for p in (_encode_part(part) for part in msg.content) if p is not None]
        if msg.role in ("system", "developer"):
            system_parts.extend(parts)
        elif msg.role == "user":
            contents.append({"role": "user", "parts": parts})
        else:
            for call in msg.tool_calls:
                names[call.id] = call.name
                parts.append(_encode_tool_call(call))
            contents.append({"role": "model", "parts": parts})
    flush_results()
    return ({"parts": system_parts} if system_parts else None), contents


def _encode_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if isinstance(choice, NamedToolChoice):
        config: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    else:
        config = {"mode": _MODES_TO_WIRE[choice]}
    return {"functionCallingConfig": config}


def _encode_generation_config(req: ChatRequest) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if req.temperature is not None:
        gen["temperature"] = req.temperature
    if req.top_p is not None:
        gen["topP"] = req.top_p
    if req.max_tokens is not None:
        gen["maxOutputTokens"] = req.max_tokens
    if req.stop is not None:
        gen["stopSequences"] = list(req.stop)
    if req.seed is not None:
        gen["seed"] = req.seed
    if req.top_k is not None:
        gen["topK"] = req.top_k
    if req.frequency_penalty is not None:
        gen["frequencyPenalty"] = req.frequency_penalty
    if req.presence_penalty is not None:
        gen["presencePenalty"] = req.presence_penalty
    fmt = req.response_format
    if fmt is not None:
        gen["responseMimeType"] = "text/plain" if fmt.type == "text" else "application/json"
        if fmt.type == "json_schema" and fmt.json_schema is not None:
            gen["responseJsonSchema"] = fmt.json_schema
    if req.reasoning is not None:
        thinking: dict[str, Any] = {"includeThoughts": True}
        if req.reasoning.budget_tokens is not None:
            thinking["thinkingBudget"] = req.reasoning.budget_tokens
        if req.reasoning.effort is not None:
            thinking["thinkingLevel"] = req.reasoning.effort.upper()
        gen["thinkingConfig"] = thinking
    return gen


def _keep_thoughts_choice(req: ChatRequest, gen: dict[str, Any]) -> None:
    """A Gemini client's ``includeThoughts: false`` is its own choice, not policy: honour it.

    Pass-through never replaces what the encoder set, and the encoder asks for thoughts by default.
    """
    carried = req.passthrough
    if carried is None or carried.format != "gemini" or "thinkingConfig" not in gen:
        return
    config = carried.fields.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    if isinstance(thinking, dict) and thinking.get("includeThoughts") is False:
        gen["thinkingConfig"]["includeThoughts"] = False


def encode_request(req: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """Canonical → ``generateContent`` body. ``stream`` changes only the URL for Gemini, not the body."""
    system, contents = _encode_messages(req.messages)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    if req.tools:
        declarations = []
        for tool in req.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                declaration["description"] = tool.description
            declaration["parametersJsonSchema"] = tool.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if req.tool_choice is not None:
        body["toolConfig"] = _encode_tool_choice(req.tool_choice)
    gen = _encode_generation_config(req)
    _keep_thoughts_choice(req, gen)
    if gen:
        body["generationConfig"] = gen
    if req.user is not None:
        drop_field("user", "gemini")  # generateContent has no end-user field
    return apply_extras(body, req, "gemini")


# -- requests: wire -> canonical ------------------------------------------------------------------------
def _decode_image(part: dict[str, Any], where: str) -> ImagePart:
    if "inlineData" in part:
        blob = _camel(part["inlineData"] or {})
        if not blob.get("data") or not blob.get("mimeType"):
            raise _bad(f"{where}.inlineData needs mimeType and data", where)
        return ImagePart(data=blob["data"], media_type=blob["mimeType"])
    file_data = _camel(part["fileData"] or {})
    if not file_data.get("fileUri"):
        raise _bad(f"{where}.fileData needs fileUri", where)
    return ImagePart(url=file_data["fileUri"], media_type=file_data.get("mimeType"))


def _decode_part(part: dict[str, Any], where: str) -> ContentPart:
    part = _camel(part)
    signature = part.get("thoughtSignature")
    if "text" in part:
        if part.get("thought"):
            return ThinkingPart(text=part["text"] or "", signature=signature)
        return TextPart(text=part["text"] or "", signature=signature)
    if "inlineData" in part or "fileData" in part:
        return _decode_image(part, where)
    if set(part) == {"thoughtSignature"} or (part.get("thought") and "text" not in part):
        return ThinkingPart(text="", signature=signature)
    raise _bad(f"{where}: unsupported part kind {sorted(part)!r}", where)


def _response_text(response: Any) -> tuple[str, bool]:
    """``functionResponse.response`` → (tool message text, is_error)."""
    if isinstance(response, dict) and len(response) == 1:
        key, value = next(iter(response.items()))
        if key in ("output", "error") and isinstance(value, str):
            return value, key == "error"
    if response is None:
        return "", False
    return orjson.dumps(response).decode(), False


def _decode_system(instruction: Any) -> Message:
    if isinstance(instruction, str):
        return Message(role="system", content=instruction)
    if not isinstance(instruction, dict) or not isinstance(instruction.get("parts"), list):
        raise _bad("systemInstruction must be a Content object with parts", "systemInstruction")
    parts = [
        _decode_part(p, f"systemInstruction.parts[{i}]") for i, p in enumerate(instruction["parts"])
    ]
    return Message(role="system", content=parts)


def _decode_messages(contents: Any) -> list[Message]:
    if not isinstance(contents, list):
        raise _bad("contents must be a list of Content objects", "contents")
    messages: list[Message] = []
    open_calls: list[ToolCall] = []  # calls of the latest model turn not yet answered
    for turn, content in enumerate(contents):
        where = f"contents[{turn}]"
        content = _camel(content)
        if not isinstance(content, dict) or not isinstance(content.get("parts", []), list):
            raise _bad(f"{where} must be a Content object with a parts list", where)
        role = content.get("role", "user")
        parts = content.get("parts", [])
        if role == "model":
            body: list[ContentPart] = []
            calls: list[ToolCall] = []
            for order, part in enumerate(parts):
                if not isinstance(part, dict):
                    raise _bad(f"{where}.parts[{order}] must be an object", where)
                part = _camel(part)
                if "functionCall" in part:
                    fc = _camel(part["functionCall"] or {})
                    if not fc.get("name"):
                        raise _bad(f"{where}.parts[{order}].functionCall needs a name", where)
                    calls.append(
                        ToolCall(
                            id=fc.get("id") or request_call_id(turn, order),
                            name=fc["name"],
                            arguments=fc.get("args") or {},
                            signature=part.get("thoughtSignature"),
                        )
                    )
                else:
                    body.append(_decode_part(part, f"{where}.parts[{order}]"))
            messages.append(Message(role="assistant", content=body, tool_calls=calls))
            open_calls = list(calls)
        elif role in ("user", "function"):
            body = []
            for order, part in enumerate(parts):
                if not isinstance(part, dict):
                    raise _bad(f"{where}.parts[{order}] must be an object", where)
                part = _camel(part)
                if "functionResponse" in part:
                    fr = _camel(part["functionResponse"] or {})
                    name = fr.get("name")
                    if not name:
                        raise _bad(f"{where}.parts[{order}].functionResponse needs a name", where)
                    call_id = fr.get("id")
                    match = next(
                        (c for c in open_calls if (c.id == call_id if call_id else c.name == name)), None
                    )
                    if match is not None:
                        open_calls.remove(match)
                    call_id = call_id or (match.id if match else request_call_id(turn, order))
                    text, is_error = _response_text(fr.get("response"))
                    messages.append(
                        Message(role="tool", content=text, tool_call_id=call_id, name=name, is_error=is_error)
                    )
                else:
                    body.append(_decode_part(part, f"{where}.parts[{order}]"))
            if body or not parts:
                messages.append(Message(role="user", content=body))
        else:
            raise _bad(f"{where}.role must be 'user' or 'model', not {role!r}", f"{where}.role")
    return messages


def _decode_tools(tools: Any, other: list[dict[str, Any]]) -> list[ToolSpec]:
    if not isinstance(tools, list):
        raise _bad("tools must be a list", "tools")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{i}] must be an object", f"tools[{i}]")
        tool = _camel(tool)
        declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
        rest = {k: v for k, v in tool.items() if k not in ("functionDeclarations", "function_declarations")}
        if rest:
            other.append(rest)  # googleSearch, codeExecution, …: passed through untouched
        for j, decl in enumerate(declarations or []):
            if not isinstance(decl, dict) or not decl.get("name"):
                raise _bad(f"tools[{i}].functionDeclarations[{j}] needs a name", f"tools[{i}]")
            decl = _camel(decl)
            if "parametersJsonSchema" in decl:
                params = decl["parametersJsonSchema"]
            elif "parameters" in decl:
                params = _openapi_to_json_schema(decl["parameters"])
            else:
                params = None
            kwargs: dict[str, Any] = {"name": decl["name"], "description": decl.get("description")}
            if params is not None:
                kwargs["parameters"] = params
            try:
                specs.append(ToolSpec(**kwargs))
            except ValueError:
                where = f"tools[{i}].functionDeclarations[{j}].parameters"
                raise _bad(f"{where} must be a JSON Schema with type 'object'", where) from None
    return specs


def _decode_tool_choice(tool_config: Any, options: dict[str, Any]) -> ToolChoice | None:
    tool_config = _camel(tool_config)
    config = (tool_config or {}).get("functionCallingConfig") if isinstance(tool_config, dict) else None
    rest = {k: v for k, v in (tool_config or {}).items() if k != "functionCallingConfig"}
    choice: ToolChoice | None = None
    if isinstance(config, dict):
        config = _camel(config)
        mode = str(config.get("mode", "AUTO")).upper()
        allowed = config.get("allowedFunctionNames")
        extra = set(config) - {"mode", "allowedFunctionNames"}
        if not extra and not allowed and mode in ("AUTO", "NONE", "ANY"):
            choice = {"AUTO": "auto", "NONE": "none", "ANY": "required"}[mode]  # type: ignore[assignment]
        elif not extra and mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
            choice = NamedToolChoice(name=allowed[0])
        else:
            rest["functionCallingConfig"] = config  # not representable canonically: pass it through
    if rest:
        options["toolConfig"] = rest
    return choice


def _decode_generation_config(gen: Any, fields: dict[str, Any], options: dict[str, Any]) -> None:
    if not isinstance(gen, dict):
        raise _bad("generationConfig must be an object", "generationConfig")
    gen = _camel(gen)
    passthrough = {k: v for k, v in gen.items() if k not in _GEN_KEYS}
    for wire, name in _GEN_FIELDS.items():
        if wire in gen:
            fields[name] = gen[wire]
    if gen.get("candidateCount") not in (None, 1):
        raise UnsupportedParameterError("only candidateCount 1 is supported", param="generationConfig.candidateCount")
    mime = gen.get("responseMimeType")
    schema = gen.get("responseJsonSchema")
    if schema is None and gen.get("responseSchema") is not None:
        schema = _openapi_to_json_schema(gen["responseSchema"])
    if mime == "application/json":
        fields["response_format"] = (
            ResponseFormat(type="json_schema", json_schema=schema)
            if schema is not None
            else ResponseFormat(type="json_object")
        )
    elif mime == "text/plain" and schema is None:
        fields["response_format"] = ResponseFormat(type="text")
    elif mime is not None or schema is not None:
        for key in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            if key in gen:
                passthrough[key] = gen[key]
    thinking = _camel(gen.get("thinkingConfig"))
    if isinstance(thinking, dict):
        level = thinking.get("thinkingLevel")
        effort = level.lower() if isinstance(level, str) and level.lower() in _EFFORTS else None
        fields["reasoning"] = Reasoning(budget_tokens=thinking.get("thinkingBudget"), effort=effort)
        leftover = {k: v for k, v in thinking.items() if k not in ("thinkingBudget", "includeThoughts")}
        if effort is not None:
            leftover.pop("thinkingLevel", None)
        if thinking.get("includeThoughts") is not True:
            leftover["includeThoughts"] = bool(thinking.get("includeThoughts", False))
        if leftover:
            passthrough["thinkingConfig"] = leftover
    if passthrough:
        options["generationConfig"] = passthrough


def decode_request(body: dict[str, Any], *, model: str = "") -> ChatRequest:
    """``generateContent`` body (model from the URL path) → canonical. Unknown keys ride along Gemini-only."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object", "body")
    body = _camel(body)
    messages: list[Message] = []
    if body.get("systemInstruction") is not None:
        messages.append(_decode_system(body["systemInstruction"]))
    messages.extend(_decode_messages(body.get("contents", [])))
    options: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    server_tools: list[dict[str, Any]] = []
    if body.get("tools") is not None:
        fields["tools"] = _decode_tools(body["tools"], server_tools)
    if body.get("toolConfig") is not None:
        fields["tool_choice"] = _decode_tool_choice(body["toolConfig"], options)
    if body.get("generationConfig") is not None:
        _decode_generation_config(body["generationConfig"], fields, options)
    known = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
    unknown = {key: value for key, value in body.items() if key not in known}
    passthrough = split_unknown(unknown, "gemini", leftovers=options, tools=server_tools)
    try:
        return ChatRequest(
            model=model or str(body.get("model", "")), messages=messages, passthrough=passthrough, **fields
        )
    except ValueError as exc:
        first: dict[str, Any] = getattr(exc, "errors", lambda: [{}])()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        param = PARAM_NAMES.get(loc, loc or "body")
        raise _bad(f"Invalid value at '{param}': {first.get('msg', exc)}", param) from None


# -- responses ------------------------------------------------------------------------------------------
def _decode_usage(meta: Any) -> Usage:
    if not isinstance(meta, dict):
        return Usage()
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _encode_usage(usage: Usage) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.input_tokens + max(usage.output_tokens, usage.reasoning_tokens),
    }
    if usage.cached_input_tokens:
        meta["cachedContentTokenCount"] = usage.cached_input_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _decode_finish(raw: str | None, has_calls: bool) -> FinishReason:
    if has_calls and raw in (None, "STOP", "FINISH_REASON_UNSPECIFIED"):
        return "tool_calls"
    return _FINISH_FROM_WIRE.get(raw or "STOP", "stop")


def _decode_tool_call(part: dict[str, Any], response_id: str, index: int) -> ToolCall:
    fc = part["functionCall"]
    name = fc.get("name") or ""
    args = fc.get("args") or {}
    call_id = fc.get("id") or response_call_id(response_id, index, name, args)
    if isinstance(args, dict):
        return ToolCall(id=call_id, name=name, arguments=args, signature=part.get("thoughtSignature"))
    return ToolCall(
        id=call_id,
        name=name,
        raw_arguments=orjson.dumps(args).decode(),
        signature=part.get("thoughtSignature"),
    )


def _decode_response_part(part: dict[str, Any]) -> ContentPart | None:
    if "inlineData" in part or "fileData" in part:
        return _decode_image(part, "candidates[0].content.parts")
    if "text" in part or "thoughtSignature" in part:
        return _decode_part(part, "candidates[0].content.parts")
    return None  # executableCode & co. have no canonical form in a chat answer


def decode_response(body: dict[str, Any]) -> ChatResponse:
    """``GenerateContentResponse`` → canonical (first candidate only)."""
    response_id = str(body.get("responseId") or "")
    candidates = body.get("candidates") or []
    candidate = candidates[0] if candidates else {}
    parts = ((candidate.get("content") or {}).get("parts")) or []
    content: list[ContentPart] = []
    calls: list[ToolCall] = []
    for part in parts:
        if "functionCall" in part:
            calls.append(_decode_tool_call(part, response_id, len(calls)))
        else:
            decoded = _decode_response_part(part)
            if decoded is not None:
                content.append(decoded)
    raw = candidate.get("finishReason")
    if not candidates and (body.get("promptFeedback") or {}).get("blockReason"):
        raw = body["promptFeedback"]["blockReason"]
        reason: FinishReason = "content_filter"
    else:
        reason = _decode_finish(raw, bool(calls))
    return ChatResponse(
        id=response_id,
        model=str(body.get("modelVersion") or ""),
        message=Message(role="assistant", content=content, tool_calls=calls),
        finish_reason=reason,
        usage=_decode_usage(body.get("usageMetadata")),
        raw_finish_reason=raw,
    )


def _encode_finish(reason: FinishReason, raw: str | None) -> str:
    """Keep the provider's own reason when it agrees with the canonical one (faithful re-encoding)."""
    if raw is not None and raw in _FINISH_FROM_WIRE and _decode_finish(raw, reason == "tool_calls") == reason:
        return raw
    return _FINISH_TO_WIRE[reason]


def _encode_response_parts(message: Message) -> list[dict[str, Any]]:
    parts = [p for p in (_encode_part(part) for part in message.content) if p is not None]
    parts.extend(_encode_tool_call(call) for call in message.tool_calls)
    return parts


def encode_response(resp: ChatResponse) -> dict[str, Any]:
    """Canonical → ``GenerateContentResponse``. Synthesized tool-call ids are left off, like Gemini does."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": _encode_response_parts(resp.message)},
                "finishReason": _encode_finish(resp.finish_reason, resp.raw_finish_reason),
                "index": 0,
            }
        ],
        "usageMetadata": _encode_usage(resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    }


# -- errors ---------------------------------------------------------------------------------------------
_TOKEN_LIMIT = re.compile(
    r"(input token count.*exceeds|exceeds the maximum number of tokens|context (window|length)|too many tokens"
    r"|maximum context length|prompt is too long)",
    re.I | re.S,
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_BY_STATUS_NAME: dict[str, type[EPError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "RESOURCE_EXHAUSTED": RateLimitError,
    "UNAVAILABLE": OverloadedError,
    "DEADLINE_EXCEEDED": UpstreamTimeoutError,
}
_OUR_DOMAIN = "execution-platform"


def _error_classes() -> dict[str, type[EPError]]:
    """Every taxonomy class by its ``type`` code, so our own encoded errors decode to the same class."""
    found: dict[str, type[EPError]] = {}
    for name in _errors.__all__:
        obj = getattr(_errors, name)
        if isinstance(obj, type) and issubclass(obj, EPError):
            found[obj.type] = obj
    return found


def _duration(text: Any) -> float | None:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)s\s*", str(text or ""))
    return float(match.group(1)) if match else None


def decode_error(status: int, body: bytes, headers: Any) -> EPError:
    """Google's ``{"error": {"code", "message", "status", "details"}}`` → taxonomy (keeps retry-after)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else str(body or "")
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]  # streaming endpoints wrap errors in an array
    error = parsed.get("error") if isinstance(parsed, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or text.strip() or f"upstream returned HTTP {status}")
    status_name = str(error.get("status") or "").upper() or None
    status = status or int(error.get("code") or 0) or 500
    reason = domain = None
    retry_after = parse_retry_after(headers)
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("ErrorInfo"):
            reason, domain = detail.get("reason"), detail.get("domain")
        elif kind.endswith("RetryInfo") and retry_after is None:
            retry_after = _duration(detail.get("retryDelay"))
    cls: type[EPError] | None = None
    if domain == _OUR_DOMAIN and isinstance(reason, str):
        cls = _error_classes().get(reason.lower())
    if cls is None:
        if reason == "API_KEY_INVALID":
            cls = AuthenticationError
        elif status == 400 and _TOKEN_LIMIT.search(message):
            cls = ContextLengthExceededError
        elif status_name in _BY_STATUS_NAME:
            cls = _BY_STATUS_NAME[status_name]
    if cls is None:
        err = error_for_status(status, message, body=text, headers=headers, code=status_name)
        if err.retry_after is None:
            err.retry_after = retry_after
        return err
    return cls(message, upstream_status=status, upstream_body=text, retry_after=retry_after, code=status_name)


def encode_error(err: EPError) -> tuple[int, dict[str, Any]]:
    """Taxonomy → Google's error body; the ``ErrorInfo`` reason lets our own decoder restore the class."""
    status = err.status_code
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": err.type.upper(),
            "domain": _OUR_DOMAIN,
        }
    ]
    if err.retry_after is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{err.retry_after:g}s"}
        )
    return status, {
        "error": {
            "code": status,
            "message": err.message,
            "status": _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"),
            "details": details,
        }
    }


# -- streams --------------------------------------------------------------------------------------------
class StreamDecoder:
    """``streamGenerateContent?alt=sse`` chunks (each a full response) → canonical events.

    Text signatures are held until the text part ends and then emitted as an empty signed
    :class:`TextDelta`, so folding the stream yields the same parts as the non-streamed answer.
    """

    def __init__(self, model: str = "") -> None:
        self.model = model
        self._started = False
        self._done = False
        self._calls = 0
        self._pending_signature: str | None = None
        self._usage = Usage()
        self._id = ""

    def _flush_signature(self) -> list[StreamEvent]:
        if self._pending_signature is None:
            return []
        signature, self._pending_signature = self._pending_signature, None
        return [TextDelta(text="", signature=signature)]

    def feed(self, sse: SSEEvent) -> list[StreamEvent]:
        if self._done or not sse.data.strip() or sse.data.strip() == "[DONE]":
            return []
        chunk = sse.json()
        if isinstance(chunk, list):
            chunk = chunk[0] if chunk else {}
        if not isinstance(chunk, dict):
            raise ValueError("stream chunk is not a JSON object")
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            raise decode_error(int(error.get("code") or 500), sse.data.encode(), None)
        events: list[StreamEvent] = []
        if not self._started:
            self._started = True
            self._id = str(chunk.get("responseId") or "")
            events.append(StartEvent(id=self._id, model=str(chunk.get("modelVersion") or self.model)))
        if chunk.get("usageMetadata"):
            self._usage = _decode_usage(chunk["usageMetadata"])
        candidates = chunk.get("candidates") or []
        candidate = candidates[0] if candidates else {}
        for part in ((candidate.get("content") or {}).get("parts")) or []:
            events.extend(self._part(part))
        raw = candidate.get("finishReason")
        if raw is None and not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            raw = chunk["promptFeedback"]["blockReason"]
            reason: FinishReason | None = "content_filter"
        else:
            reason = _decode_finish(raw, self._calls > 0) if raw is not None else None
        if reason is not None:
            self._done = True
            events.extend(self._flush_signature())
            events.append(UsageEvent(usage=self._usage))
            events.append(FinishEvent(reason=reason, raw_reason=raw))
        return events

    def _part(self, part: dict[str, Any]) -> list[StreamEvent]:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            events = self._flush_signature()
            call = _decode_tool_call(part, self._id, self._calls)
            index = self._calls
            self._calls += 1
            events.append(ToolCallStart(index=index, id=call.id, name=call.name))
            arguments = (
                call.raw_arguments
                if call.raw_arguments is not None
                else orjson.dumps(call.arguments).decode()
            )
            events.append(ToolCallDelta(index=index, arguments=arguments))
            events.append(ToolCallEnd(index=index, tool_call=call))
            return events
        if part.get("thought"):
            return [*self._flush_signature(), ThinkingDelta(text=part.get("text") or "", signature=signature)]
        if "text" in part or signature is not None:
            events = self._flush_signature() if signature is not None else []
            text = part.get("text") or ""
            if text:
                events.append(TextDelta(text=text))
            self._pending_signature = signature if signature is not None else self._pending_signature
            return events
        return []  # inline media and code execution parts have no stream event

    def finish(self) -> list[StreamEvent]:
        return []  # without a finishReason the stream was cut short; the provider reports that


class StreamEncoder:
    """Canonical events → ``streamGenerateContent?alt=sse`` chunks (one full response object each)."""

    def __init__(self, model: str = "") -> None:
        self.model = model
        self._id = ""
        self._usage: Usage | None = None
        self._had_calls = False

    def _chunk(self, parts: list[dict[str, Any]] | None, extra: dict[str, Any] | None = None) -> bytes:
        candidate: dict[str, Any] = {"index": 0}
        if parts is not None:
            candidate["content"] = {"role": "model", "parts": parts}
        if extra:
            candidate.update(extra)
        chunk: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": self._id,
        }
        if self._usage is not None and extra:
            chunk["usageMetadata"] = _encode_usage(self._usage)
        return frame(chunk)

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StartEvent):
            self._id = event.id
            self.model = event.model or self.model
            return b""
        if isinstance(event, TextDelta):
            part: dict[str, Any] = {"text": event.text}
            if event.signature is not None:
                part["thoughtSignature"] = event.signature
            return self._chunk([part])
        if isinstance(event, ThinkingDelta):
            if event.redacted:
                return b""
            part = {"text": event.text, "thought": True}
            if event.signature is not None:
                part["thoughtSignature"] = event.signature
            return self._chunk([part])
        if isinstance(event, ToolCallEnd):
            self._had_calls = True
            return self._chunk([_encode_tool_call(event.tool_call)])
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, FinishEvent):
            if self._usage is None:
                self._usage = Usage()
            return self._chunk(None, {"finishReason": _encode_finish(event.reason, event.raw_reason)})
        if isinstance(event, ErrorEvent):
            status = {"rate_limit_error": 429, "overloaded_error": 503, "timeout_error": 504}.get(
                event.error_type, 500
            )
            return frame(
                {"error": {"code": status, "message": event.message, "status": _STATUS_NAMES.get(status)}}
            )
        return b""  # ToolCallStart/Delta: Gemini sends each call whole, at its end

    def finish(self) -> bytes:
        return b""
