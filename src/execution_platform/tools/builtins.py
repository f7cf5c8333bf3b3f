"""The built-in tool set of a workspace, ready to add to a :class:`ToolRegistry`.

    workspace = workspace_for(settings, persona="architect")   # EP_WORKSPACE_ROOT/architect
    registry = ToolRegistry(builtin_tools(workspace))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .commands import CommandPolicy, CommandRunner
from .files import FileLimits, FileTools
from .registry import Tool, function_tool
from .sandbox import Workspace

BUILTIN_NAMES = ("read_file", "write_file", "list_dir", "glob", "stat", "search", "run_command")


def default_workspace_root(settings: Any = None) -> Path:
    """``EP_WORKSPACE_ROOT`` (from settings or the environment), else a per-user data directory."""
    configured = getattr(settings, "workspace_root", None) or os.environ.get("EP_WORKSPACE_ROOT")
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "execution-platform" / "workspaces"


def workspace_for(settings: Any = None, persona: str | None = None) -> Workspace:
    """The workspace root, or the persona's own subdirectory of it."""
    root = default_workspace_root(settings)
    return Workspace.for_persona(root, persona) if persona else Workspace(root)


def builtin_tools(
    workspace: Workspace,
    *,
    limits: FileLimits | None = None,
    commands: CommandPolicy | None = None,
    include: tuple[str, ...] = BUILTIN_NAMES,
) -> list[Tool]:
    """Tools bound to ``workspace``; ``include`` picks a subset (e.g. leave out ``run_command``)."""
    files = FileTools(workspace, limits)
    runner = CommandRunner(workspace, commands)
    functions: dict[str, Callable[..., Any]] = {
        "read_file": files.read_file,
        "write_file": files.write_file,
        "list_dir": files.list_dir,
        "glob": files.glob,
        "stat": files.stat,
        "search": files.search,
        "run_command": runner.run_command,
    }
    unknown = set(include) - set(functions)
    if unknown:
        raise ValueError(f"unknown built-in tools: {', '.join(sorted(unknown))}")
    # The command runner enforces its own timeout (and kills the process), so the registry's outer
    # timeout is set a little above the policy's maximum.
    policy = runner.policy
    return [
        function_tool(
            functions[name],
            name=name,
            source="builtin",
            timeout=policy.max_timeout + 5 if name == "run_command" else None,
        )
        for name in include
    ]
