"""Start the configured ``mcp_servers`` with the app and mount their tools into its registry.

Servers start concurrently (each stdio server is a process that takes a moment to come up). A
server that cannot start is logged at ERROR with its name and the reason, and skipped: the gateway
still starts, serves chat and every other tool, and that server's ``<name>__*`` tools are simply
absent from ``/v1/tools`` (a chat gateway should not go down because one optional tool source is
broken). Servers are started once per worker process, at start-up; a SIGHUP reload does not restart
them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from ..errors import scrub

log = logging.getLogger("execution_platform.gateway")


def _fields(spec: Any) -> dict[str, Any]:
    data = dict(spec) if isinstance(spec, Mapping) else spec.model_dump()
    return {k: v for k, v in data.items() if v is not None}


async def mount_servers(servers: Mapping[str, Any], registry: Any, stack: AsyncExitStack) -> list[str]:
    """Connect every server, add its tools to ``registry``; ``stack`` closes them. Returns the names started."""
    from ..tools.mcp_servers import MCPServerConfig, MCPTools

    async def start(name: str, spec: Any) -> MCPTools | None:
        try:
            mounted = MCPTools([MCPServerConfig(name=name, **_fields(spec))], registry)
            await mounted.__aenter__()
        except Exception as exc:
            log.error("MCP server '%s' did not start; its tools are not available: %s", name, scrub(str(exc)))
            return None
        log.info("MCP server '%s' started: %d tool(s)", name, len(mounted.tool_names))
        return mounted

    started = await asyncio.gather(*(start(name, spec) for name, spec in servers.items()))
    names: list[str] = []
    for name, mounted in zip(servers, started, strict=True):
        if mounted is not None:
            stack.push_async_exit(mounted)
            names.append(name)
    return names
