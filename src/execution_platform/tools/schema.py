"""Turn a Python callable's signature into a pydantic model and a provider-friendly JSON Schema.

The model validates arguments before a tool runs; the schema is what the model sees. Schemas are
flattened (``$ref`` inlined, ``title`` noise dropped) because Gemini's function declarations accept
only a subset of JSON Schema and every provider must see the same thing.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(fn: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """Summary paragraph plus Google-style ``Args:`` descriptions (``name: text``)."""
    doc = inspect.getdoc(fn)
    if not doc:
        return None, {}
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _ARGS_HEADER.match(line):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    in_args, current = False, None
    for line in lines:
        if _ARGS_HEADER.match(line):
            in_args = True
            continue
        if not in_args:
            continue
        if line and not line[0].isspace():  # next section (Returns:, Raises:, …)
            break
        match = _ARG_LINE.match(line)
        indent = len(line) - len(line.lstrip())
        if match and indent <= 4:
            current = match.group(1).lstrip("*")
            params[current] = match.group(2).strip()
        elif current and line.strip():
            params[current] = f"{params[current]} {line.strip()}".strip()
    return (" ".join(summary) or None), params


def single_model_param(fn: Callable[..., Any]) -> tuple[str, type[BaseModel]] | None:
    """``(name, Model)`` when the callable takes exactly one pydantic-model parameter."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 1:
        return None
    hints = typing.get_type_hints(fn, include_extras=False)
    annotation = hints.get(params[0].name)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return params[0].name, annotation
    return None


def arguments_model(fn: Callable[..., Any], name: str, descriptions: dict[str, str]) -> type[BaseModel]:
    """A pydantic model with one field per parameter (type hints, defaults, docstring descriptions)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool '{name}': *args/**kwargs cannot be described to a model")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        desc = descriptions.get(param.name)
        fields[param.name] = (annotation, Field(default, description=desc) if desc else default)
    model_name = "".join(part.title() for part in re.split(r"[^0-9A-Za-z]+", name) if part) or "Tool"
    return create_model(f"{model_name}Arguments", __config__=ConfigDict(extra="forbid"), **fields)


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$defs`` references and drop ``title`` keywords (never property names)."""
    defs = schema.get("$defs", {})
    recursive: list[str] = []

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref.removeprefix("#/$defs/")
            if key in defs and key not in seen:
                merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged, seen | {key})
            recursive.append(key)  # a recursive model keeps this $ref, so $defs must stay
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "additionalProperties" and value is False:
                continue  # Gemini rejects it; extra arguments are still refused by validation
            if key == "properties" and isinstance(value, dict):
                out[key] = {prop: walk(sub, seen) for prop, sub in value.items()}
            else:
                out[key] = walk(value, seen)
        return out

    cleaned = walk(schema, frozenset())
    cleaned.pop("description", None)  # the tool's own description says it once
    if recursive:
        cleaned["$defs"] = defs
    cleaned.setdefault("type", "object")
    cleaned.setdefault("properties", {})
    return cleaned
