"""MCP servers as tool sources: connect (stdio or streamable HTTP), list their tools, call them.

Built on the official ``mcp`` package's ``Client``. Each server's tools are added to a
:class:`ToolRegistry` under ``<server>__<tool>`` so names from different servers cannot collide, and
are then usable in the tool loop and listed by the gateway like any other tool. Arguments are checked
against the server's JSON Schema before anything is sent.

    async with MCPTools([MCPServerConfig(name="fs", command="python", args=["server.py"])], registry):
        await Agent(client, "openai/gpt-4o", registry).run("…")

A stdio server gets only the ``mcp`` package's safe default environment (``PATH``, ``HOME``, …) plus
what ``env`` adds: the platform's API keys are not passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import jsonschema
import mcp
from mcp import types as mcp_types

from ..errors import ToolExecutionError, UpstreamConnectionError
from .registry import ArgumentsError, Tool, ToolRegistry
from .schema import clean_schema

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
logger = logging.getLogger(__name__)


@dataclass
class MCPServerConfig:
    """One MCP server: a ``command`` (stdio) or a ``url`` (streamable HTTP), not both."""

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    timeout: float = 30.0
    prefix: str | None = None  # default "<name>__"; "" keeps the server's own tool names

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server '{self.name}' needs exactly one of command (stdio) or url (HTTP)")

    @property
    def tool_prefix(self) -> str:
        return f"{self.name}__" if self.prefix is None else self.prefix

    def target(self, stack: AsyncExitStack) -> Any:
        """What ``mcp.Client`` connects to."""
        if self.command is not None:
            return mcp.StdioServerParameters(command=self.command, args=self.args, env=self.env, cwd=self.cwd)
        assert self.url is not None
        if not self.headers:
            return self.url
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30.0, read=300.0))
        stack.push_async_callback(http.aclose)
        return streamable_http_client(self.url, http_client=http)


class MCPConnection:
    """A live connection to one server, used as an async context manager.

    The ``mcp`` client lives in a task of its own (its anyio scopes must be entered and left in one
    task), so the connection can be opened and closed from different tasks: a test fixture, an app's
    lifespan, a request handler.
    """

    def __init__(self, config: MCPServerConfig) -> None:
        self.config = config
        self._client: mcp.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    async def __aenter__(self) -> MCPConnection:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp-{self.config.name}")
        try:
            await ready
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = mcp.Client(self.config.target(stack), read_timeout_seconds=self.config.timeout)
                self._client = await stack.enter_async_context(client)
                ready.set_result(None)
                await self._closing.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(
                    UpstreamConnectionError(
                        f"cannot connect to MCP server '{self.config.name}': {_describe(exc)}", provider="mcp"
                    )
                )
            else:
                logger.warning("MCP server '%s' disconnected: %s", self.config.name, _describe(exc))
        finally:
            self._client = None

    async def _stop(self) -> None:
        self._closing.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(10):  # stdio shutdown: close stdin, then SIGTERM, then SIGKILL
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    @property
    def client(self) -> mcp.Client:
        if self._client is None:
            raise ToolExecutionError(f"MCP server '{self.config.name}' is not connected")
        return self._client

    async def list_tools(self) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang us
            page = await self.client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; an error result or a protocol failure raises ``ToolExecutionError``."""
        try:
            result = await self.client.call_tool(name, arguments)
        except mcp.MCPError as exc:
            raise ToolExecutionError(f"MCP server '{self.config.name}' refused '{name}': {exc.message}") from None
        return result_value(result, f"{self.config.name}/{name}")

    async def tools(self) -> list[Tool]:
        """The server's tools as registry tools (prefixed names, schema-checked arguments)."""
        return [self._as_tool(spec) for spec in await self.list_tools()]

    def _as_tool(self, spec: mcp_types.Tool) -> Tool:
        remote = spec.name
        schema = dict(spec.input_schema or {"type": "object", "properties": {}})
        validator = jsonschema.Draft202012Validator(schema)

        def prepare(args: dict[str, Any]) -> dict[str, Any]:
            error = jsonschema.exceptions.best_match(validator.iter_errors(args))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path) or None
                raise ArgumentsError(f"{where + ': ' if where else ''}{error.message}", param=where)
            return args

        async def handler(args: dict[str, Any]) -> Any:
            return await self.call(remote, args)

        return Tool(
            name=_UNSAFE.sub("_", self.config.tool_prefix + remote)[:64],
            description=spec.description,
            parameters=clean_schema(schema),
            handler=handler,
            prepare=prepare,
            timeout=self.config.timeout,
            source=f"mcp:{self.config.name}",
        )


def result_value(result: mcp_types.CallToolResult, label: str) -> Any:
    """A tool result as a value: the text (or structured content when there is no text)."""
    texts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource) and hasattr(block.resource, "text"):
            texts.append(block.resource.text)
        else:
            texts.append(f"[{block.type} content: {getattr(block, 'mime_type', None) or 'binary'}]")
    if result.is_error:
        raise ToolExecutionError(f"MCP tool '{label}' failed: {' '.join(texts) or 'no details'}")
    if texts:
        return "\n".join(texts)
    return result.structured_content


def _describe(exc: BaseException) -> str:
    """The innermost useful message of an exception (group), for a readable connection error."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class MCPTools:
    """Connects several servers and mounts their tools into a registry for the duration of a block."""

    def __init__(self, servers: list[MCPServerConfig], registry: ToolRegistry) -> None:
        self.servers = servers
        self.registry = registry
        self.connections: dict[str, MCPConnection] = {}
        self._stack = AsyncExitStack()
        self._mounted: list[str] = []

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools mounted into the registry (while the block is open)."""
        return list(self._mounted)

    async def __aenter__(self) -> MCPTools:
        try:
            for config in self.servers:
                connection = await self._stack.enter_async_context(MCPConnection(config))
                self.connections[config.name] = connection
                for tool in await connection.tools():
                    self.registry.add(tool)
                    self._mounted.append(tool.name)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in self._mounted:
            self.registry.remove(name)
        self._mounted.clear()
        self.connections.clear()
        await self._stack.aclose()
