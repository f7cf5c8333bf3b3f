"""Command execution inside a workspace: an operating-system sandbox, allow-listed programs, no shell.

Every program runs under bubblewrap (see :mod:`.bubblewrap`): the workspace is the only writable path,
the rest of the system is a read-only minimum, and there is no network, no host ``/proc``, no inherited
environment, and kernel limits on CPU, memory, file size and processes. That, not argument checking, is
what makes ``date -f/etc/passwd``, ``sort -o/elsewhere`` or ``grep -R`` through a link harmless: the
paths they name do not exist in the sandbox. Without bubblewrap nothing runs (fail closed).

The command line is split like a shell would split words but never given to a shell: shell operators
(``;``, ``|``, ``&&``, redirections, substitutions) are refused rather than passed on as text. The
program must be a bare name on the allow-list; paths in arguments are still checked against the
workspace as defence in depth. The whole process tree is killed at the timeout or the output cap.
"""

from __future__ import annotations

import asyncio
import math
import os
import shlex
import shutil
import signal
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ToolExecutionError,
)
from .bubblewrap import INSTALL_HINT, ResourceLimits, find_bwrap, probe, rlimit_setter, sandbox_argv
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
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    # Name on PATH or path of the bubblewrap executable; EP_BWRAP overrides it for the whole process.
    bwrap: str = field(default_factory=lambda: os.environ.get("EP_BWRAP") or "bwrap")
    max_scan_entries: int = 100_000  # workspace entries checked for hard links before each command


def sandbox_unavailable(bwrap: str | None = None) -> str | None:
    """Why ``run_command`` cannot run here (bubblewrap missing), or ``None`` when it can."""
    bwrap = bwrap or CommandPolicy().bwrap
    found = find_bwrap(bwrap)
    if found is None:
        return f"run_command is disabled: the bubblewrap sandbox ('{bwrap}') is not installed; {INSTALL_HINT}"
    failure = probe(found)
    if failure is not None:
        return f"run_command is disabled: bubblewrap ('{found}') cannot build its sandbox here: {failure}"
    return None


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
            **{k: v for k, v in self.policy.extra_env.items() if not k.upper().startswith("EP_")},
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
        bwrap = find_bwrap(self.policy.bwrap)
        if bwrap is None:
            raise PermissionDeniedError(  # a refusal (4xx per the contract), the same on every call
                f"command '{program}' refused: run_command needs the bubblewrap sandbox ('{self.policy.bwrap}'), "
                f"which is not installed; {INSTALL_HINT}",
                code="sandbox_unavailable",
            )
        failure = await asyncio.to_thread(probe, bwrap)
        if failure is not None:
            raise PermissionDeniedError(
                f"command '{program}' refused: bubblewrap ('{bwrap}') cannot build its sandbox on this machine "
                f"(user namespaces may be disabled): {failure}",
                code="sandbox_unavailable",
            )
        limit = min(timeout or self.policy.timeout, self.policy.max_timeout)
        env = self.environment()
        masked = await asyncio.to_thread(hard_links, self.workspace.root, self.policy.max_scan_entries)
        proc = await asyncio.create_subprocess_exec(
            *sandbox_argv(
                bwrap,
                workspace=self.workspace.root,
                workdir=workdir,
                env=env,
                argv=[executable, *argv[1:]],
                masked=masked,
            ),
            cwd=self.workspace.root,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # own process group: a kill takes bwrap; its PID namespace goes with it
            preexec_fn=rlimit_setter(self.policy.limits, cpu_seconds=math.ceil(limit) + 1),
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


_MAX_MASKS = 2_000  # each masked file is one bind mount on bubblewrap's command line


def hard_links(root: Path, max_entries: int) -> list[Path]:
    """Regular files under ``root`` with more than one hard link: the sandbox hides their content.

    A hard link is the same file as its other names, so a link in the workspace to a file outside
    would expose that file through the bind mount. Sandboxed programs cannot create one (the outside
    is not mounted, and ``link`` across mounts fails), but something on the host could have; with no
    way to tell whether the other names are inside, every multiply-linked file is masked, as
    ``read_file`` refuses them. A tree too large to check is refused rather than run unchecked.
    """
    found: list[Path] = []
    seen = 0
    for current, dirs, files in os.walk(root, followlinks=False):
        seen += len(dirs) + len(files)
        if seen > max_entries:
            raise PermissionDeniedError(
                f"the workspace has more than {max_entries} entries; run_command refuses to run in a tree "
                "that large (it checks every file for hard links first)",
                param="command",
                code="sandbox_refused",
            )
        for name in files:
            path = Path(current) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                found.append(path)
                if len(found) > _MAX_MASKS:
                    raise PermissionDeniedError(
                        f"the workspace has more than {_MAX_MASKS} files with several hard links; run_command "
                        "refuses to run there (such files may alias files outside the workspace)",
                        param="command",
                        code="sandbox_refused",
                    )
    return found


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
