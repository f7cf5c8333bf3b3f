"""Attacks on ``run_command``: each must be refused or, run inside the sandbox, harmless.

The program allow-list and argument checks are only defence in depth; these attacks go through them
(an option with its value attached, ``grep -R``, links, ``/proc``, an interpreter) and must still find
nothing: the host's files, processes, environment and network are not there inside bubblewrap.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from execution_platform.errors import EPError, PermissionDeniedError, ToolExecutionError
from execution_platform.tools import ToolRegistry
from execution_platform.tools.bubblewrap import ResourceLimits, find_bwrap
from execution_platform.tools.builtins import builtin_tools
from execution_platform.tools.commands import DEFAULT_COMMANDS, CommandPolicy
from execution_platform.tools.sandbox import Workspace

needs_bwrap = pytest.mark.skipif(find_bwrap() is None, reason="bubblewrap (bwrap) is not installed")

SECRET = "outside-secret-7f3a9c"
PROVIDER_KEY = "sk-proj-gateway-provider-key-0123456789"
HOST_PASSWD_LINE = "root:x:0:0"


@dataclass
class Box:
    ws: Workspace
    outside: Path
    registry: ToolRegistry

    async def run(self, command: str, **args: object) -> str:
        """Everything the caller gets back (stdout, stderr, exit code), or the refusal message."""
        try:
            out = await self.registry.invoke("run_command", {"command": command, **args})
        except EPError as exc:
            return f"refused: {exc.message}"
        return f"exit {out['exit_code']}\n{out['stdout']}\n{out['stderr']}"


def make_box(tmp_path: Path, policy: CommandPolicy) -> Box:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    ws = Workspace(tmp_path / "workspace")
    (ws.root / "notes.txt").write_text("b\na\n")
    return Box(ws, outside, ToolRegistry(builtin_tools(ws, commands=policy, include=("run_command",))))


@pytest.fixture
def box(tmp_path: Path) -> Box:
    allowed = DEFAULT_COMMANDS | {"env", "ln", "bash"}
    return make_box(tmp_path, CommandPolicy(allowed=allowed, timeout=10, max_output_bytes=200_000))


def outside_snapshot(box: Box) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in box.outside.iterdir()}


@needs_bwrap
async def test_attached_option_values_read_nothing_from_the_host(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway's working directory holds a .env with the provider key, as a real deployment would.
    (box.outside / ".env").write_text(f"EP_OPENAI_API_KEY={PROVIDER_KEY}\n")
    monkeypatch.chdir(box.outside)
    attacks = [
        "date -f/etc/passwd",
        f"date -f{box.outside}/secret.txt",
        f"date -f/proc/{os.getpid()}/cwd/.env",
        f"grep -f{box.outside}/secret.txt -r .",
        "head -c300 --lines=5 -q -v -- -f/etc/passwd",
        "sort -m -T/tmp --files0-from=/proc/self/cwd/../../etc/passwd",
    ]
    for command in attacks:
        out = await box.run(command)
        assert HOST_PASSWD_LINE not in out, command
        assert SECRET not in out, command
        assert PROVIDER_KEY not in out and "gateway-provider-key" not in out, command


@needs_bwrap
async def test_output_options_cannot_write_outside_the_workspace(box: Box) -> None:
    before = outside_snapshot(box)
    host_tmp = Path("/tmp") / f"ep-sandbox-pwned-{uuid.uuid4().hex}"
    attacks = [
        f"sort -o{box.outside}/pwned notes.txt",
        f"sort -o {box.outside}/pwned notes.txt",
        f"sort --output={box.outside}/pwned notes.txt",
        f"sort -o{box.outside}/secret.txt notes.txt",
        f"sort -o{host_tmp} notes.txt",
        f"sort --output={host_tmp} notes.txt",
    ]
    for command in attacks:
        await box.run(command)
        assert outside_snapshot(box) == before, command
        assert not host_tmp.exists(), command
    # Writing inside the workspace still works.
    assert (await box.run("sort -osorted.txt notes.txt")).startswith("exit 0")
    assert (box.ws.root / "sorted.txt").read_text() == "a\nb\n"


@needs_bwrap
async def test_symlinks_out_of_the_workspace_lead_nowhere(box: Box) -> None:
    os.symlink(box.outside / "secret.txt", box.ws.root / "link_file")
    os.symlink(box.outside, box.ws.root / "link_dir")
    os.symlink("/etc/passwd", box.ws.root / "passwd")
    for command in ("grep -R outside .", "grep -R root .", "cat link_file", "ls -laR link_dir/", "date -fpasswd",
                    "date -flink_file", "sort -olink_file notes.txt"):
        out = await box.run(command)
        assert SECRET not in out and HOST_PASSWD_LINE not in out, command
    assert (box.outside / "secret.txt").read_text() == SECRET + "\n"


@needs_bwrap
async def test_hard_links_out_of_the_workspace_are_masked_and_cannot_be_made(box: Box) -> None:
    # A hard link to an outside file on the same file system, placed by something on the host.
    os.link(box.outside / "secret.txt", box.ws.root / "hardlink")
    for command in ("cat hardlink", "grep -R outside .", "date -fhardlink", "head -c100 hardlink"):
        out = await box.run(command)
        assert SECRET not in out, command
    # From inside, a new hard link to anything outside cannot be made at all.
    out = await box.run(f"ln {box.outside}/secret.txt made_inside")
    assert not (box.ws.root / "made_inside").exists(), out
    out = await box.run("bash -c 'ln /etc/passwd pw; ln /usr/bin/env env2; ls'")
    assert not (box.ws.root / "pw").exists() and not (box.ws.root / "env2").exists(), out


@needs_bwrap
async def test_host_processes_and_their_environments_are_invisible(box: Box) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={"EP_OPENAI_API_KEY": PROVIDER_KEY, "PATH": "/usr/bin:/bin"},
    )
    try:
        attacks = [
            f"date -f/proc/{host.pid}/environ",
            f"grep -a -r gateway-provider /proc/{host.pid}/",
            "date -f/proc/1/environ",
            "bash -c 'cat /proc/*/environ; ls /proc'",
        ]
        for command in attacks:
            out = await box.run(command)
            assert "gateway-provider-key" not in out, command
        listing = await box.run("bash -c 'ls -d /proc/[0-9]*'")
        pids = {int(line.rsplit("/", 1)[1]) for line in listing.splitlines() if line.startswith("/proc/")}
        assert pids and host.pid not in pids and os.getpid() not in pids
        assert max(pids) < 100  # a fresh PID namespace: only the sandbox's own few processes
    finally:
        host.kill()
        host.wait()


@needs_bwrap
async def test_gateway_secrets_never_reach_command_output(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_OPENAI_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    for command in ("env", "bash -c 'env; cat /proc/self/environ /proc/1/environ /proc/$PPID/environ'"):
        out = await box.run(command)
        assert "gateway-provider-key" not in out and "EP_" not in out, command
    # A secret-shaped string the model put in a workspace file comes back scrubbed.
    (box.ws.root / "leak.txt").write_text(f"token={PROVIDER_KEY}\n")
    out = await box.run("cat leak.txt")
    assert out.startswith("exit 0") and "gateway-provider-key" not in out


@needs_bwrap
async def test_there_is_no_network(box: Box) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        out = await box.run(f"bash -c 'echo hello >/dev/tcp/127.0.0.1/{port} && echo connected'")
        assert "connected" not in out
        with pytest.raises(TimeoutError):
            listener.accept()[0].close()
    finally:
        listener.close()


def _host_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Box]:
    limits = ResourceLimits(cpu_seconds=5, processes=64, file_size_bytes=1_000_000)
    yield make_box(tmp_path, CommandPolicy(allowed=frozenset({"bash"}), timeout=1.5, limits=limits))


@needs_bwrap
async def test_a_process_storm_is_killed_with_its_whole_tree(spawner: Box) -> None:
    # Bounded stand-in for a fork bomb: children that detach into their own sessions, then a CPU loop.
    marker = f"storm{uuid.uuid4().hex[:8]}"
    command = (
        f"bash -c 'for i in {{1..40}}; do setsid bash -c \"exec -a {marker} sleep 300\" & done; "
        "while :; do :; done'"
    )
    started = time.monotonic()
    with pytest.raises(ToolExecutionError, match="timed out"):
        await spawner.registry.invoke("run_command", {"command": command})
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while _host_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _host_processes(marker) == []


@needs_bwrap
async def test_rlimits_bound_file_size(spawner: Box) -> None:
    await spawner.run("bash -c 'head -c 5000000 /dev/zero > big'")
    assert (spawner.ws.root / "big").stat().st_size <= 1_000_000


async def test_without_bubblewrap_run_command_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    policy = CommandPolicy(bwrap=str(tmp_path / "no-such-bwrap"))
    registry = ToolRegistry(builtin_tools(ws, commands=policy, include=("run_command",)))
    with pytest.raises(PermissionDeniedError) as caught:
        await registry.invoke("run_command", {"command": "ls"})
    assert "bubblewrap" in caught.value.message and "install" in caught.value.message
    assert caught.value.code == "sandbox_unavailable"


async def test_a_bubblewrap_that_cannot_build_the_sandbox_is_refused_too(tmp_path: Path) -> None:
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    ws = Workspace(tmp_path / "ws")
    registry = ToolRegistry(builtin_tools(ws, commands=CommandPolicy(bwrap=str(broken)), include=("run_command",)))
    with pytest.raises(PermissionDeniedError) as caught:
        await registry.invoke("run_command", {"command": "ls"})
    assert "cannot build its sandbox" in caught.value.message and "No permissions" in caught.value.message
    assert caught.value.code == "sandbox_unavailable"


@needs_bwrap
async def test_every_rlimit_is_in_force_inside_the_sandbox(spawner: Box) -> None:
    out = await spawner.registry.invoke("run_command", {"command": "bash -c 'cat /proc/self/limits'"})
    limits = {line[:26].strip(): line[26:].split()[:2] for line in out["stdout"].splitlines()[1:]}
    assert limits["Max cpu time"] == ["3", "3"]  # the 1.5 s timeout, rounded up, plus one
    assert limits["Max address space"] == [str(2 * 1024**3)] * 2
    assert limits["Max file size"] == ["1000000"] * 2
    assert limits["Max processes"] == ["64"] * 2
    assert limits["Max core file size"] == ["0"] * 2
