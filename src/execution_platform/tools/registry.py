"""Tools the model may call: registration, JSON Schemas, validation and invocation.

A :class:`Tool` is a name, a description, a JSON Schema and an async handler taking a dict of already
validated arguments. :class:`ToolRegistry` builds tools from plain Python functions (sync or async),
filters them by allow-list and invokes them, turning every refusal or failure into an ``EPError`` so
the gateway can answer ``POST /v1/tools/invoke`` with a 4xx and the loop can tell the model.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import re
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from ..errors import (
    EPError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ToolExecutionError,
    scrub,
)
from ..model import ToolSpec
from .schema import arguments_model, clean_schema, parse_docstring, single_model_param

Handler = Callable[[Any], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Any])

# Names every provider accepts (OpenAI's and Gemini's rule is the strictest).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


class ArgumentsError(ValueError):
    """Raised by a :attr:`Tool.prepare` function: the arguments do not fit the tool's schema."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _identity(args: dict[str, Any]) -> Any:
    return args


@dataclass
class Tool:
    """One callable tool.

    ``prepare`` validates the raw argument dict (raising ``pydantic.ValidationError`` or
    :class:`ArgumentsError`) and returns what ``handler`` receives, so nothing runs on bad input.
    ``timeout`` overrides the registry default.
    """

    name: str
    description: str | None
    parameters: dict[str, Any]
    handler: Handler
    prepare: Callable[[dict[str, Any]], Any] = field(default=_identity, repr=False)
    timeout: float | None = None
    source: str = "python"  # "python", "builtin", "mcp:<server>": shown in listings

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def describe(self) -> dict[str, Any]:
        """The public listing entry (``GET /v1/tools``)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "source": self.source,
        }


def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    source: str = "python",
) -> Tool:
    """Describe a Python function as a tool: type hints (or one pydantic model) → schema, docstring → text.

    Sync functions run in a worker thread. A timeout abandons such a call but cannot stop the thread,
    so long-running sync tools should bound their own work (async tools are cancelled for real).
    """
    tool_name = name or fn.__name__
    summary, arg_docs = parse_docstring(fn)
    model_param = single_model_param(fn)
    model: type[BaseModel] = model_param[1] if model_param else arguments_model(fn, tool_name, arg_docs)
    is_async = inspect.iscoroutinefunction(fn)

    async def handler(parsed: BaseModel) -> Any:
        if model_param:
            kwargs: dict[str, Any] = {model_param[0]: parsed}
        else:
            kwargs = {key: getattr(parsed, key) for key in type(parsed).model_fields}
        if is_async:
            return await fn(**kwargs)
        # Sync tools run in a worker thread so a slow one cannot freeze the event loop.
        return await asyncio.to_thread(fn, **kwargs)

    return Tool(
        name=tool_name,
        description=description or summary or (model.__doc__ if model_param else None),
        parameters=clean_schema(model.model_json_schema()),
        handler=handler,
        prepare=model.model_validate,
        timeout=timeout,
        source=source,
    )


def _validation_message(name: str, exc: ValidationError) -> tuple[str, str | None]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(arguments)"
        problems.append(f"{loc}: {err['msg']}")
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    param = ".".join(str(p) for p in first) or None
    return f"invalid arguments for tool '{name}': " + "; ".join(problems), param


def to_jsonable(value: Any) -> Any:
    """A tool result as plain JSON data (pydantic models, paths, dataclasses included)."""
    return to_jsonable_python(value, fallback=str)


def scrub_result(value: Any) -> Any:
    """A tool result with every credential-shaped string removed, as plain JSON data.

    Tool output is attacker-influenced text (a file the model wrote, a web page an MCP server
    fetched) that goes back to a model or a client, so it gets the same scrubbing as error messages.
    """
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {scrub_result(key) if isinstance(key, str) else key: scrub_result(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_result(item) for item in value]
    return scrub_result(to_jsonable(value))


def result_text(value: Any) -> str:
    """A tool result as the text the model receives: strings verbatim, everything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(to_jsonable(value)).decode()


class ToolRegistry:
    """A named set of tools. Not a global: each agent, persona or gateway app holds its own."""

    def __init__(self, tools: Collection[Tool] = (), *, default_timeout: float = 30.0) -> None:
        self.default_timeout = default_timeout
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    # -- registration ---------------------------------------------------------------------------
    def add(self, tool: Tool, *, replace: bool = False) -> Tool:
        if not _NAME.match(tool.name):
            raise ValueError(
                f"tool name '{tool.name}' is not accepted by every provider: use letters, digits, _ or -, "
                "at most 64 characters, not starting with a digit"
            )
        if tool.name in self._tools and not replace:
            raise ValueError(f"a tool named '{tool.name}' is already registered")
        self._tools[tool.name] = tool
        return tool

    @overload
    def register(self, fn: F, /) -> F: ...

    @overload
    def register(
        self, fn: None = None, /, *, name: str | None = None, description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]: ...

    def register(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Register a function; usable as ``@registry.register`` or ``@registry.register(name=...)``."""

        def decorate(func: F) -> F:
            self.add(function_tool(func, name=name, description=description, timeout=timeout))
            return func

        return decorate(fn) if fn is not None else decorate

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise NotFoundError(f"unknown tool '{name}' (available: {known})", code="tool_not_found") from None

    def tools(self, allowed: Collection[str] | None = None) -> list[Tool]:
        """Tools passing the allow-list (exact names or fnmatch patterns like ``fs__*``); None = all."""
        return [tool for tool in self._tools.values() if is_allowed(tool.name, allowed)]

    def specs(self, allowed: Collection[str] | None = None) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools(allowed)]

    def describe(self, allowed: Collection[str] | None = None) -> list[dict[str, Any]]:
        """What ``GET /v1/tools`` lists: name, description, JSON Schema and where the tool comes from."""
        return [tool.describe() for tool in self.tools(allowed)]

    # -- invocation -----------------------------------------------------------------------------
    def validate(self, name: str, args: Any, *, allowed: Collection[str] | None = None) -> Tool:
        """Check that ``name`` exists and is allowed and that ``args`` fit its schema; raise otherwise."""
        tool = self.get(name)
        if not is_allowed(name, allowed):
            raise PermissionDeniedError(f"tool '{name}' is not allowed here", code="tool_not_allowed")
        if not isinstance(args, dict):
            raise InvalidRequestError(
                f"arguments for tool '{name}' must be a JSON object, got {type(args).__name__}", param="args"
            )
        return tool

    async def invoke(
        self,
        name: str,
        args: Any = None,
        *,
        allowed: Collection[str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Validate and run one tool call; every refusal or failure is raised as an ``EPError``.

        Unknown tool → ``NotFoundError``; not on the allow-list → ``PermissionDeniedError``; bad
        arguments → ``InvalidRequestError``; the tool raised or timed out → ``ToolExecutionError``
        (tools may also raise any ``EPError`` themselves, e.g. a sandbox refusal).
        """
        args = {} if args is None else args
        tool = self.validate(name, args, allowed=allowed)
        try:
            prepared = tool.prepare(dict(args))
        except ValidationError as exc:
            message, param = _validation_message(name, exc)
            raise InvalidRequestError(message, param=param, code="invalid_tool_arguments") from None
        except ArgumentsError as exc:
            raise InvalidRequestError(
                f"invalid arguments for tool '{name}': {exc}", param=exc.param, code="invalid_tool_arguments"
            ) from None
        limit = timeout if timeout is not None else (tool.timeout or self.default_timeout)
        try:
            async with asyncio.timeout(limit):
                result = await tool.handler(prepared)
            if isinstance(result, str) and len(result) < 4096:
                return scrub_result(result)
            # Results can be megabytes (a file, a command's output): scrubbed off the event loop.
            return await asyncio.to_thread(scrub_result, result)
        except EPError:
            raise
        except TimeoutError:
            raise ToolExecutionError(
                f"tool '{name}' timed out after {limit:g}s", code="tool_timeout"
            ) from None
        except ValidationError as exc:  # a pydantic error raised inside the tool body
            raise ToolExecutionError(f"tool '{name}' failed: {exc}") from None
        except Exception as exc:
            raise ToolExecutionError(f"tool '{name}' failed: {type(exc).__name__}: {exc}") from None


def is_allowed(name: str, allowed: Collection[str] | None) -> bool:
    if allowed is None:
        return True
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in allowed)
