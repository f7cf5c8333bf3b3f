"""Command execution inside a workspace: allow-listed programs, no shell, no inherited secrets.

A command line is split like a shell would split words, but it is never given to a shell: shell
operators (``;``, ``|``, ``&&``, redirections, substitutions) are refused rather than silently passed
as arguments. The program must be a bare name on the allow-list, found on a fixed ``PATH``; it runs in
its own process group with a minimal environment (``PATH``, ``HOME`` = the workspace, ``LANG``), a
timeout and a cap on its output, and is killed with its children when either is exceeded.

Arguments naming paths are checked against the workspace too (absolute paths, ``..`` escapes and
symlinks leading out are refused). That is defence in depth, not isolation: a program that can open
paths from its own input (an interpreter, ``find -exec``…) must not be put on the allow-list. Real
isolation of arbitrary programs needs OS-level sandboxing (containers, namespaces).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ToolExecutionError,
)
from .sandbox import Workspace

DEFAULT_COMMANDS = frozenset(
    {"cat", "date", "diff", "echo", "grep", "head", "ls", "pwd", "sort", "tail", "tr", "uniq", "wc"}
)
_OPERATOR_CHARS = set("();<>|&")


@dataclass(frozen=True)
class CommandPolicy:
    """What ``run_command`` may run, for how long and how much output it may produce."""

    allowed: frozenset[str] = DEFAULT_COMMANDS
    timeout: float = 10.0
    max_timeout: float = 60.0
    max_output_bytes: int = 256_000
    path: str = "/usr/local/bin:/usr/bin:/bin"
    lang: str = "C.UTF-8"
    extra_env: dict[str, str] = field(default_factory=dict)


def split_command(command: str) -> list[str]:
    """Shell-like word splitting that refuses shell syntax instead of passing it on as text."""
    if "\x00" in command:
        raise PermissionDeniedError("command contains a NUL byte", param="command", code="sandbox_refused")
    if "\n" in command or "\r" in command:
        raise PermissionDeniedError(
            "multi-line commands are refused: run one command per call", param="command", code="sandbox_refused"
        )
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        argv = list(lexer)
    except ValueError as exc:
        raise InvalidRequestError(f"cannot parse command: {exc}", param="command") from None
    for token in argv:
        if token and set(token) <= _OPERATOR_CHARS:
            raise PermissionDeniedError(
                f"shell syntax '{token}' refused: commands run without a shell (no pipes, redirections, "
                "chaining or substitutions); run one program per call",
                param="command",
                code="sandbox_refused",
            )
        if "`" in token or "$(" in token:
            raise PermissionDeniedError(
                "command substitution refused: commands run without a shell",
                param="command",
                code="sandbox_refused",
            )
    if not argv:
        raise InvalidRequestError("command is empty", param="command")
    return argv


class CommandRunner:
    """Runs allow-listed programs with the workspace as working directory and ``HOME``."""

    def __init__(self, workspace: Workspace, policy: CommandPolicy | None = None) -> None:
        self.workspace = workspace
        self.policy = policy or CommandPolicy()

    def environment(self) -> dict[str, str]:
        """The child's whole environment: nothing from ours, so no API key can leak into it."""
        return {
            "PATH": self.policy.path,
            "HOME": str(self.workspace.root),
            "LANG": self.policy.lang,
            **self.policy.extra_env,
        }

    def _check_args(self, args: list[str], cwd: str) -> None:
        for arg in args:
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            if value.startswith(("/", "~")):
                raise PermissionDeniedError(
                    f"absolute path argument '{value}' refused: paths are relative to the workspace",
                    param="command",
                    code="sandbox_refused",
                )
            candidate = os.path.join(cwd, value) if cwd != "." else value
            looks_like_path = ".." in value.split("/") or os.path.lexists(self.workspace.root / candidate)
            if looks_like_path:
                self.workspace.resolve(candidate)  # raises when it leads outside

    async def run_command(self, command: str, cwd: str = ".", timeout: float | None = None) -> dict[str, Any]:
        """Run one allow-listed program (no shell) in the workspace; returns exit code, stdout and stderr.

        Args:
            command: Program and arguments, e.g. ``grep -n TODO notes.txt``. No pipes or redirections.
            cwd: Working directory relative to the workspace.
            timeout: Seconds before the program is killed (capped by the policy).
        """
        if timeout is not None and timeout <= 0:
            raise InvalidRequestError("timeout must be positive", param="timeout")
        argv = split_command(command)
        program = argv[0]
        if "/" in program:
            raise PermissionDeniedError(
                f"'{program}' refused: give a program name from the allow-list, not a path",
                param="command",
                code="sandbox_refused",
            )
        if program not in self.policy.allowed:
            allowed = ", ".join(sorted(self.policy.allowed)) or "none"
            raise PermissionDeniedError(
                f"command '{program}' is not on the allow-list (allowed: {allowed})",
                param="command",
                code="command_not_allowed",
            )
        executable = shutil.which(program, path=self.policy.path)
        if executable is None:
            raise NotFoundError(f"command '{program}' is allowed but not installed", param="command")
        workdir = self.workspace.resolve(cwd)
        if not workdir.is_dir():
            raise NotFoundError(f"working directory '{cwd}' does not exist in the workspace", param="cwd")
        self._check_args(argv[1:], self.workspace.relative(workdir))
        limit = min(timeout or self.policy.timeout, self.policy.max_timeout)
        proc = await asyncio.create_subprocess_exec(
            executable,
            *argv[1:],
            cwd=workdir,
            env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # own process group: a kill takes its children too
        )
        budget = [self.policy.max_output_bytes]
        readers = [
            asyncio.create_task(_read_capped(proc.stdout, budget)),
            asyncio.create_task(_read_capped(proc.stderr, budget)),
        ]
        clean = False
        try:
            async with asyncio.timeout(limit):
                stdout, stderr = await asyncio.gather(*readers)
                exit_code = await proc.wait()
            clean = True
        except TimeoutError:
            raise ToolExecutionError(
                f"command '{program}' timed out after {limit:g}s and was killed", code="tool_timeout"
            ) from None
        except _OutputTooLarge:
            raise PayloadTooLargeError(
                f"command '{program}' produced more than {self.policy.max_output_bytes} bytes of output "
                "and was killed; narrow it down (e.g. head, grep, a smaller range)",
                param="command",
            ) from None
        finally:
            if not clean:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                await _kill(proc)
        return {
            "exit_code": exit_code,
            "stdout": stdout.decode("utf-8", errors="replace"),
            "stderr": stderr.decode("utf-8", errors="replace"),
        }


class _OutputTooLarge(Exception):
    pass


async def _read_capped(stream: asyncio.StreamReader | None, budget: list[int]) -> bytes:
    """Read a pipe to EOF, failing as soon as both pipes together pass the shared byte budget."""
    if stream is None:
        return b""
    chunks: list[bytes] = []
    while chunk := await stream.read(65536):
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _OutputTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the whole process group (children that outlived the leader included) and reap the child.

    The pipes are drained after the kill: a paused, full pipe would otherwise never report EOF and
    ``wait()`` would never return.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        async with asyncio.timeout(5):
            for stream in (proc.stdout, proc.stderr):
                while stream is not None and await stream.read(65536):
                    pass
            await proc.wait()
    except TimeoutError:  # a descendant left the group and holds a pipe open; give up on reaping
        pass
