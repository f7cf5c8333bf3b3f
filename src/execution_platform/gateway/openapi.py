"""The published request schemas of the model-call routes, made to say what the codecs accept.

The hot routes decode their bodies themselves, so their OpenAPI schemas are written by hand; generic
ones (``model: string``, ``content: [object]``) describe requests the gateway refuses, and a client
generator or fuzzer built on them mostly produces 400s and 404s. This module narrows them when the
document is built, from what this gateway serves: ``model`` is one of its named models or
``<configured provider>/<model>``, messages follow each wire format's per-role shape, metadata is
the bounded printable ASCII the gateway checks, and a tool call names a registered tool.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..codecs.openai_embeddings import MAX_DIMENSIONS
from ..config.availability import configured_providers
from .metadata import MAX_CHARS
from .routes._catalog import model_entries, model_ids
from .state import Gateway

METADATA_STRING = {"type": "string", "pattern": f"^[\\x20-\\x7e]{{1,{MAX_CHARS}}}$"}
_TEXT = {"type": "string", "minLength": 1}
_TEXT_PART = {"type": "object", "required": ["type", "text"],
              "properties": {"type": {"const": "text"}, "text": _TEXT}}
_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": _TEXT,
        "type": {"const": "function"},
        "function": {"type": "object", "required": ["name", "arguments"],
                     "properties": {"name": _TEXT, "arguments": {"type": "string"}}},
    },
}
OPENAI_MESSAGE = {
    "oneOf": [
        {"type": "object", "required": ["role", "content"], "properties": {
            "role": {"enum": ["system", "developer", "user"]},
            "content": {"anyOf": [_TEXT, {"type": "array", "minItems": 1, "items": _TEXT_PART}]},
            "name": {"type": "string"}}},
        {"type": "object", "required": ["role", "content"], "properties": {
            "role": {"const": "assistant"},
            "content": _TEXT,
            "tool_calls": {"type": "array", "items": _TOOL_CALL}}},
        {"type": "object", "required": ["role", "tool_call_id", "content"], "properties": {
            "role": {"const": "tool"}, "tool_call_id": _TEXT, "content": _TEXT}},
    ]
}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_FUNCTION_PARAMETERS = {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}}
_RESPONSES_TEXT_PART = {"type": "object", "required": ["type", "text"],
                        "properties": {"type": {"const": "input_text"}, "text": _TEXT}}
RESPONSES_ITEM = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": ["system", "developer", "user"]},
        "content": {"anyOf": [_TEXT, {"type": "array", "minItems": 1, "items": _RESPONSES_TEXT_PART}]},
    },
}
# What the Responses codec decodes (function tools only, the four tool choices, three text formats).
RESPONSES_FIELDS: dict[str, Any] = {
    "input": {"anyOf": [_TEXT, {"type": "array", "minItems": 1, "items": RESPONSES_ITEM}]},
    "instructions": {"type": "string"},
    "tools": {"type": "array", "items": {"type": "object", "required": ["type", "name"], "properties": {
        "type": {"const": "function"}, "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"},
        "description": {"type": "string"}, "parameters": _FUNCTION_PARAMETERS}}},
    "tool_choice": {"enum": ["auto", "none", "required"]},
    "text": {"type": "object", "properties": {"format": {"oneOf": [
        {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object"]}}},
        {"type": "object", "required": ["type", "schema"],
         "properties": {"type": {"const": "json_schema"}, "name": {"type": "string"}, "schema": _FUNCTION_PARAMETERS}},
    ]}}},
    "reasoning": {"type": "object", "properties": {"effort": {"enum": ["minimal", "low", "medium", "high"]}}},
    "max_output_tokens": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": _UNIT,
}
_GEMINI_CONTENT: dict[str, Any] = {
    "type": "object",
    "required": ["role", "parts"],
    "properties": {"role": {"enum": ["user", "model"]},
                   "parts": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["text"],
                                                                          "properties": {"text": _TEXT}}}},
}
GEMINI_FIELDS: dict[str, Any] = {
    "contents": {"type": "array", "minItems": 1, "items": _GEMINI_CONTENT},
    "systemInstruction": {"type": "object", "required": ["parts"], "properties": {
        "parts": _GEMINI_CONTENT["properties"]["parts"]}},
    "generationConfig": {"type": "object", "properties": {
        "temperature": {"type": "number", "minimum": 0, "maximum": 2}, "topP": _UNIT,
        "maxOutputTokens": {"type": "integer", "minimum": 1, "maximum": 100_000},
        "candidateCount": {"const": 1}}},
}
GEMINI_CHAT_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["user", "assistant"]},
        "content": {"anyOf": [_TEXT, {"type": "array", "minItems": 1, "items": _TEXT_PART}]},
    },
}


def model_schema(gw: Gateway, description: str) -> dict[str, Any]:
    """A named model of this gateway, or ``provider/model`` for a provider it has a key for."""
    named = sorted({name for name, _ in model_ids(gw)})
    providers = [name for name, ok in configured_providers(gw.settings, gw.config).items() if ok]
    choices: list[dict[str, Any]] = []
    if named:
        choices.append({"enum": named})
    if providers:
        alternatives = "|".join(re.escape(p) for p in providers)
        choices.append({"type": "string", "pattern": f"^({alternatives})/[A-Za-z0-9][A-Za-z0-9._:-]{{0,99}}$"})
    if not choices:
        return {"type": "string", "minLength": 1, "description": description}
    return {"anyOf": choices, "description": description} if len(choices) > 1 else {**choices[0],
                                                                                    "description": description}


def _request_schema(doc: dict[str, Any], path: str) -> dict[str, Any] | None:
    operation = doc.get("paths", {}).get(path, {}).get("post")
    if operation is None:
        return None
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref")
    if ref:
        return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


EXAMPLE_MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5",
                  "gemini": "gemini/gemini-2.5-flash"}
EXAMPLE_EMBEDDING_MODELS = {"openai": "openai/text-embedding-3-small", "gemini": "gemini/text-embedding-004"}


def _example_models(gw: Gateway) -> tuple[str | None, str | None]:
    """A chat model and an embedding model of a configured provider, for examples."""
    providers = [name for name, ok in configured_providers(gw.settings, gw.config).items() if ok]
    chat_model = next((EXAMPLE_MODELS[p] for p in providers if p in EXAMPLE_MODELS), None)
    embedding_model = next((EXAMPLE_EMBEDDING_MODELS[p] for p in providers if p in EXAMPLE_EMBEDDING_MODELS), None)
    return chat_model, embedding_model


def _examples(gw: Gateway) -> dict[str, dict[str, Any]]:
    """One working request per hot route, for the documentation (and the examples phase of fuzzers)."""
    chat_model, embedding_model = _example_models(gw)
    hello = [{"role": "user", "content": "Hello"}]
    found: dict[str, dict[str, Any]] = {}
    if chat_model:
        found["/chat"] = found["/v1/chat/completions"] = {"model": chat_model, "messages": hello}
        found["/v1/messages"] = {"model": chat_model, "max_tokens": 64, "messages": hello}
    if embedding_model:
        found["/v1/embeddings"] = {"model": embedding_model, "input": "Hello"}
    return found


def refine(doc: dict[str, Any], gw: Gateway, tools: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A copy of ``doc`` with the hot routes' request schemas narrowed.

    A deep copy because the route modules' schema dicts end up inside the generated document and
    are shared by every app in the process.
    """
    doc = copy.deepcopy(doc)
    address = "provider/model, a deployment name or persona:NAME"
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/chat", "/v1/embeddings",
                 "/v1/responses", "/v1/responses/input_tokens"):
        schema = _request_schema(doc, path)
        if schema is None:
            continue
        schema["properties"]["model"] = model_schema(gw, address)
    chat = _request_schema(doc, "/v1/chat/completions")
    if chat is not None:
        chat["properties"]["messages"] = {"type": "array", "minItems": 1, "items": OPENAI_MESSAGE}
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        messages = _request_schema(doc, path)
        if messages is not None:
            messages["properties"]["messages"] = {"type": "array", "minItems": 1, "items": ANTHROPIC_MESSAGE}
            _narrow_anthropic(messages["properties"])
    for path in ("/v1/responses", "/v1/responses/input_tokens"):
        responses = _request_schema(doc, path)
        if responses is not None:
            # The routes share one schema dict: a copy per route, so each keeps its own narrowing.
            narrowed = {**copy.deepcopy(responses), "required": ["model", "input"]}
            narrowed["properties"].update(copy.deepcopy(RESPONSES_FIELDS))
            _media(doc, path)["schema"] = narrowed
    _refine_gemini(doc, gw)
    _refine_model_ids(doc, gw)
    _link_responses(doc)
    native = _request_schema(doc, "/chat")
    if native is not None:
        native["properties"]["messages"]["minItems"] = 1
        meta = doc["components"]["schemas"].get("RequestMetadata", {}).get("properties", {})
        for name in ("persona", "run_id", "team", "session_id"):
            if name in meta:
                meta[name] = {"anyOf": [METADATA_STRING, {"type": "null"}], "default": None}
        if "tags" in meta:
            meta["tags"] = {"type": "object", "maxProperties": 32,
                            "propertyNames": METADATA_STRING, "additionalProperties": METADATA_STRING}
    embeddings = _request_schema(doc, "/v1/embeddings")
    if embeddings is not None and "dimensions" in embeddings["properties"]:
        embeddings["properties"]["dimensions"] = {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSIONS}
    invoke = _request_schema(doc, "/v1/tools/invoke")
    if invoke is not None and tools:
        # One alternative per tool: its name with its own argument schema, as the registry validates.
        variants = [{"type": "object", "required": ["name", "args"],
                     "properties": {"name": {"const": name}, "args": _standalone(parameters)}}
                    for name, parameters in sorted(tools.items())]
        _media(doc, "/v1/tools/invoke")["schema"] = {"oneOf": variants}
    for path, example in _examples(gw).items():
        if path in doc.get("paths", {}):
            _media(doc, path)["example"] = example
    return doc


def _narrow_anthropic(properties: dict[str, Any]) -> None:
    """System blocks are text blocks, tools carry a name and an object input schema, as the codec checks."""
    properties["system"] = {"anyOf": [_TEXT, {"type": "array", "minItems": 1, "items": _TEXT_PART}]}
    properties["tools"] = {"type": "array", "items": {"type": "object", "required": ["name", "input_schema"],
                           "properties": {"name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"},
                                          "description": {"type": "string"},
                                          "input_schema": _FUNCTION_PARAMETERS}}}
    properties["tool_choice"] = {"type": "object", "required": ["type"],
                                 "properties": {"type": {"enum": ["auto", "any", "none"]}}}
    properties["thinking"] = {"type": "object", "required": ["type"], "properties": {"type": {"const": "disabled"}}}


def _chat_targets(gw: Gateway) -> dict[str, Any]:
    """``MODEL:METHOD`` for the Gemini routes: a named model or a configured provider's model, a chat method."""
    model = model_schema(gw, "")
    methods = "|".join(GEMINI_CHAT_METHODS)
    patterns = [f"^(models/)?{alt['pattern'][1:-1]}:({methods})$" for alt in model.get("anyOf", [model])
                if "pattern" in alt]
    names = [f"{name}:{method}" for alt in model.get("anyOf", [model]) for name in alt.get("enum", [])
             for method in GEMINI_CHAT_METHODS]
    choices: list[dict[str, Any]] = [{"type": "string", "pattern": p} for p in patterns]
    if names:
        choices.append({"enum": names})
    return {"anyOf": choices} if len(choices) > 1 else (choices[0] if choices else {"type": "string", "minLength": 1})


def _refine_gemini(doc: dict[str, Any], gw: Gateway) -> None:
    """The Gemini routes take a chat body and ``MODEL:METHOD`` where MODEL is one this gateway serves."""
    for version in ("v1beta", "v1"):
        path = f"/{version}/models/{{target}}"
        if path not in doc.get("paths", {}):
            continue
        operation = doc["paths"][path]["post"]
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "target":
                parameter["schema"] = _chat_targets(gw)
                chat_model = _example_models(gw)[0]
                if chat_model:  # an example with its '/' also tells generators the slash belongs in it
                    parameter["example"] = f"{chat_model}:generateContent"
        # The chat methods' body: the embedding-only fields are refused there (as by Google: unknown names).
        original = _request_schema(doc, path) or {"properties": {}}
        properties = {k: v for k, v in original["properties"].items() if k in ("tools", "toolConfig")}
        properties.update(copy.deepcopy(GEMINI_FIELDS))
        _media(doc, path)["schema"] = {"type": "object", "required": ["contents"], "properties": properties,
                                       "additionalProperties": False,
                                       "description": "A generateContent, streamGenerateContent or countTokens body"}


def _refine_model_ids(doc: dict[str, Any], gw: Gateway) -> None:
    """``GET /v1/models/{model_id}`` answers for the models this gateway lists (others are a 404)."""
    operation = doc.get("paths", {}).get("/v1/models/{model_id}", {}).get("get")
    if operation is None:
        return
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "model_id":
            parameter["schema"] = {"enum": sorted({e.id for e in model_entries(gw)}) or [""],
                                   "description": "a model id as GET /v1/models lists it"}


def _link_responses(doc: dict[str, Any]) -> None:
    """A created response's id is what ``GET``/``DELETE /v1/responses/{response_id}`` take (OpenAPI links)."""
    paths = doc.get("paths", {})
    created = paths.get("/v1/responses", {}).get("post", {}).get("responses", {}).get("200")
    stored = paths.get("/v1/responses/{response_id}", {})
    if created is None:
        return
    links = {f"{method.capitalize()}Response": {"operationId": stored[method]["operationId"],
                                                "parameters": {"response_id": "$response.body#/id"}}
             for method in ("get", "delete") if "operationId" in stored.get(method, {})}
    if links:
        created["links"] = links


def _standalone(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's schema as-is unless it points into its own ``$defs`` (which the document cannot resolve)."""
    return {"type": "object"} if "$ref" in json.dumps(schema) else schema


def _media(doc: dict[str, Any], path: str) -> dict[str, Any]:
    media: dict[str, Any] = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return media

