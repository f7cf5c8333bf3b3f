"""Escape attempts against the sandboxed built-ins: each must be refused clearly, leaving the outside intact."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from execution_platform.errors import (
    EPError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ToolExecutionError,
)
from execution_platform.tools import ToolRegistry
from execution_platform.tools.builtins import builtin_tools, workspace_for
from execution_platform.tools.commands import DEFAULT_COMMANDS, CommandPolicy
from execution_platform.tools.files import FileLimits, FileTools
from execution_platform.tools.sandbox import Workspace

SECRET = "top secret outside content"
LIMITS = FileLimits(max_read_bytes=4096, max_write_bytes=4096)
POLICY = CommandPolicy(
    allowed=DEFAULT_COMMANDS | {"sleep", "yes", "env"}, timeout=5, max_output_bytes=20_000
)


@dataclass
class Env:
    base: Path
    ws: Workspace
    outside: Path
    sibling: Path
    registry: ToolRegistry


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """``workspace`` with traps inside, plus ``outside`` and the sibling-prefix ``workspace2`` next to it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    sibling = tmp_path / "workspace2"
    sibling.mkdir()
    (sibling / "secret.txt").write_text(SECRET)
    ws = Workspace(tmp_path / "workspace")
    root = ws.root
    (root / "notes.txt").write_text("inside\n")
    (root / "sub").mkdir()
    os.symlink(outside / "secret.txt", root / "link_out")
    os.symlink(outside, root / "dirlink")
    os.symlink(root / "notes.txt", root / "inner_link")
    os.symlink("/dev/zero", root / "zero")
    os.mkfifo(root / "fifo")
    os.link(outside / "secret.txt", root / "hardlink")
    (root / "huge.txt").write_bytes(b"x" * (LIMITS.max_read_bytes + 1))
    registry = ToolRegistry(builtin_tools(ws, limits=LIMITS, commands=POLICY))
    return Env(tmp_path, ws, outside, sibling, registry)


def snapshot(env: Env) -> dict[str, bytes | str]:
    """Everything outside the workspace: paths and contents (symlinks by target)."""
    state: dict[str, bytes | str] = {}
    for current, dirs, files in os.walk(env.base):
        if Path(current) == env.ws.root or env.ws.root in Path(current).parents:
            dirs.clear()
            continue
        for name in dirs + files:
            path = Path(current) / name
            if path == env.ws.root:
                continue
            if path.is_symlink():
                state[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                state[str(path)] = path.read_bytes()
    return state


# (id, tool, args, expected error class, fragment of the message)
CASES: list[tuple[str, str, dict[str, Any], type[EPError], str]] = [
    ("traversal-read", "read_file", {"path": "../outside/secret.txt"}, PermissionDeniedError, "outside the workspace"),
    ("nested-traversal", "read_file", {"path": "sub/../../outside/secret.txt"}, PermissionDeniedError, "outside"),
    ("absolute-etc", "read_file", {"path": "/etc/passwd"}, PermissionDeniedError, "absolute path"),
    ("home-tilde", "read_file", {"path": "~/.bashrc"}, PermissionDeniedError, "absolute path"),
    ("sibling-prefix", "read_file", {"path": "../workspace2/secret.txt"}, PermissionDeniedError, "outside"),
    ("symlink-file-out", "read_file", {"path": "link_out"}, PermissionDeniedError, "outside"),
    ("symlink-dir-out", "read_file", {"path": "dirlink/secret.txt"}, PermissionDeniedError, "outside"),
    ("device-absolute", "read_file", {"path": "/dev/zero"}, PermissionDeniedError, "absolute path"),
    ("device-via-symlink", "read_file", {"path": "zero"}, PermissionDeniedError, "outside"),
    ("fifo", "read_file", {"path": "fifo"}, PermissionDeniedError, "not a regular file"),
    ("hardlink-read", "read_file", {"path": "hardlink"}, PermissionDeniedError, "hard links"),
    ("nul-byte", "read_file", {"path": "notes.txt\x00../../etc/passwd"}, PermissionDeniedError, "NUL"),
    ("huge-file", "read_file", {"path": "huge.txt"}, PayloadTooLargeError, "read limit"),
    ("traversal-write", "write_file", {"path": "../outside/pwned.txt", "content": "x"}, PermissionDeniedError, "outside"),
    ("sibling-write", "write_file", {"path": "../workspace2/pwned.txt", "content": "x"}, PermissionDeniedError, "outside"),
    ("absolute-write", "write_file", {"path": "/tmp/ep-pwned.txt", "content": "x"}, PermissionDeniedError, "absolute"),
    ("write-symlink-out", "write_file", {"path": "link_out", "content": "x"}, PermissionDeniedError, "outside"),
    ("write-symlink-in", "write_file", {"path": "inner_link", "content": "x"}, PermissionDeniedError, "symlink"),
    ("write-dirlink", "write_file", {"path": "dirlink/pwned.txt", "content": "x"}, PermissionDeniedError, "outside"),
    ("write-hardlink", "write_file", {"path": "hardlink", "content": "x"}, PermissionDeniedError, "hard links"),
    ("write-fifo", "write_file", {"path": "fifo", "content": "x"}, PermissionDeniedError, "not a regular file"),
    ("huge-write", "write_file", {"path": "big.txt", "content": "x" * 5000}, PayloadTooLargeError, "write limit"),
    ("list-parent", "list_dir", {"path": ".."}, PermissionDeniedError, "outside"),
    ("list-dirlink", "list_dir", {"path": "dirlink"}, PermissionDeniedError, "outside"),
    ("glob-parent", "glob", {"pattern": "../*"}, PermissionDeniedError, ".."),
    ("glob-absolute", "glob", {"pattern": "/etc/*"}, PermissionDeniedError, "relative"),
    ("stat-outside", "stat", {"path": "../outside/secret.txt"}, PermissionDeniedError, "outside"),
    ("search-outside", "search", {"query": "secret", "path": "../outside"}, PermissionDeniedError, "outside"),
    ("cmd-not-allowed", "run_command", {"command": "python3 -c 'print(1)'"}, PermissionDeniedError, "allow-list"),
    ("cmd-by-path", "run_command", {"command": "/bin/cat notes.txt"}, PermissionDeniedError, "not a path"),
    ("cmd-chain", "run_command", {"command": "cat notes.txt; rm -rf ../outside"}, PermissionDeniedError, "without a shell"),
    ("cmd-pipe", "run_command", {"command": "cat notes.txt | tee ../outside/p"}, PermissionDeniedError, "without a shell"),
    ("cmd-redirect", "run_command", {"command": "echo hi >../outside/pwned"}, PermissionDeniedError, "without a shell"),
    ("cmd-and", "run_command", {"command": "ls && cat ../outside/secret.txt"}, PermissionDeniedError, "without a shell"),
    ("cmd-subst", "run_command", {"command": "echo $(cat ../outside/secret.txt)"}, PermissionDeniedError, "without a shell"),
    ("cmd-backticks", "run_command", {"command": "echo `id`"}, PermissionDeniedError, "substitution"),
    ("cmd-newline", "run_command", {"command": "ls\ncat /etc/passwd"}, PermissionDeniedError, "multi-line"),
    ("cmd-abs-arg", "run_command", {"command": "cat /etc/passwd"}, PermissionDeniedError, "absolute path"),
    ("cmd-opt-abs-arg", "run_command", {"command": "grep --file=/etc/passwd x"}, PermissionDeniedError, "absolute path"),
    ("cmd-traversal-arg", "run_command", {"command": "cat ../outside/secret.txt"}, PermissionDeniedError, "outside"),
    ("cmd-symlink-arg", "run_command", {"command": "cat link_out"}, PermissionDeniedError, "outside"),
    ("cmd-cwd-escape", "run_command", {"command": "ls", "cwd": "../outside"}, PermissionDeniedError, "outside"),
    ("cmd-huge-output", "run_command", {"command": "yes"}, PayloadTooLargeError, "more than 20000 bytes"),
    ("cmd-timeout", "run_command", {"command": "sleep 30", "timeout": 0.5}, ToolExecutionError, "timed out"),
]


@pytest.mark.parametrize(("tool", "args", "error", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_escape_attempt_is_refused(
    env: Env, tool: str, args: dict[str, Any], error: type[EPError], fragment: str
) -> None:
    before = snapshot(env)
    with pytest.raises(error) as caught:
        await env.registry.invoke(tool, args)
    assert fragment in caught.value.message
    assert 400 <= caught.value.status_code < 500  # the gateway answers these with a 4xx
    assert SECRET not in caught.value.message
    assert snapshot(env) == before, "something outside the workspace changed"
    assert not Path("/tmp/ep-pwned.txt").exists()


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 20


async def test_commands_get_no_inherited_secrets(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_OPENAI_API_KEY", "sk-fake-secret-value-123456")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-secret-654321")
    out = await env.registry.invoke("run_command", {"command": "env"})
    assert out["exit_code"] == 0
    variables = dict(line.split("=", 1) for line in out["stdout"].splitlines())
    assert set(variables) == {"PATH", "HOME", "LANG", "PWD"}  # bubblewrap's --chdir sets PWD
    assert variables["HOME"] == variables["PWD"] == str(env.ws.root)
    assert "fake-secret" not in out["stdout"]


async def test_timed_out_command_is_killed_with_its_children(env: Env) -> None:
    # ``timeout`` wraps sleep; both must be gone once the call returns (one process group).
    policy = CommandPolicy(allowed=frozenset({"timeout"}), timeout=0.5)
    registry = ToolRegistry(builtin_tools(env.ws, commands=policy, include=("run_command",)))
    with pytest.raises(ToolExecutionError, match="timed out"):
        await registry.invoke("run_command", {"command": "timeout 40 sleep 39"})
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep 39"]
    assert leftovers == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\x00", b" ").decode().strip()
    except OSError:
        return ""


def test_glob_and_search_do_not_follow_links_out(env: Env) -> None:
    files = FileTools(env.ws, LIMITS)
    matches = files.glob("**/*")["matches"]
    assert "notes.txt" in matches
    assert not any(m.startswith("dirlink/") for m in matches)
    hits = files.search("secret")["matches"]
    assert hits == []  # link_out, hardlink and dirlink all lead to the secret: none is read


def test_swapping_a_directory_for_a_symlink_after_the_check_is_refused(env: Env) -> None:
    """A race: ``sub`` is a real directory when checked and a link to ``outside`` when opened."""

    class Racy(Workspace):
        def parts(self, path: str) -> tuple[Path, tuple[str, ...]]:
            result = super().parts(path)
            (self.root / "sub").rmdir()
            os.symlink(env.outside, self.root / "sub")
            return result

    racy = Racy(env.ws.root)
    before = snapshot(env)
    with pytest.raises(PermissionDeniedError, match="symlink"):
        FileTools(racy).write_file("sub/pwned.txt", "x")
    assert snapshot(env) == before
    assert not (env.outside / "pwned.txt").exists()


@pytest.mark.parametrize("persona", ["../escape", "a/b", "..", ".hidden", ""])
def test_persona_workspace_names_cannot_escape(tmp_path: Path, persona: str) -> None:
    with pytest.raises(InvalidRequestError):
        Workspace.for_persona(tmp_path, persona)
    assert list(tmp_path.iterdir()) == []


def test_persona_workspace_is_a_subdirectory_of_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_WORKSPACE_ROOT", str(tmp_path))
    ws = workspace_for(persona="architect")
    assert ws.root == (tmp_path / "architect").resolve()
    assert ws.root.is_dir()


async def test_missing_file_is_not_found(env: Env) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        await env.registry.invoke("read_file", {"path": "nope.txt"})
