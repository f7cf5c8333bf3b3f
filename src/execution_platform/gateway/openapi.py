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

from .embeddings import MAX_DIMENSIONS
from .metadata import MAX_CHARS
from .routes._catalog import configured_providers, model_ids
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


def _examples(gw: Gateway) -> dict[str, dict[str, Any]]:
    """One working request per hot route, for the documentation (and the examples phase of fuzzers)."""
    providers = [name for name, ok in configured_providers(gw.settings, gw.config).items() if ok]
    chat_model = next((EXAMPLE_MODELS[p] for p in providers if p in EXAMPLE_MODELS), None)
    embedding_model = next((EXAMPLE_EMBEDDING_MODELS[p] for p in providers if p in EXAMPLE_EMBEDDING_MODELS), None)
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
    for path in ("/v1/chat/completions", "/v1/messages", "/chat", "/v1/embeddings"):
        schema = _request_schema(doc, path)
        if schema is None:
            continue
        schema["properties"]["model"] = model_schema(gw, address)
    chat = _request_schema(doc, "/v1/chat/completions")
    if chat is not None:
        chat["properties"]["messages"] = {"type": "array", "minItems": 1, "items": OPENAI_MESSAGE}
    messages = _request_schema(doc, "/v1/messages")
    if messages is not None:
        messages["properties"]["messages"] = {"type": "array", "minItems": 1, "items": ANTHROPIC_MESSAGE}
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


def _standalone(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's schema as-is unless it points into its own ``$defs`` (which the document cannot resolve)."""
    return {"type": "object"} if "$ref" in json.dumps(schema) else schema


def _media(doc: dict[str, Any], path: str) -> dict[str, Any]:
    media: dict[str, Any] = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return media

