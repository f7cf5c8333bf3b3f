"""The operating-system sandbox ``run_command`` executes programs in: bubblewrap (``bwrap``).

An argument parser cannot know which option of which program opens a file (``date -f/etc/passwd``,
``sort -o/any/path``, ``grep -R`` through a link), so the isolation comes from the kernel instead.
Each command gets fresh namespaces (mount, PID, IPC, UTS, network, user where possible) in which:

* the only writable path is the workspace, bind-mounted at its own path; the rest of the file system
  is a read-only minimal system (``/usr`` and its ``/bin``, ``/lib*`` aliases, a few ``/etc`` files the
  C library needs) — no home directories, no project directory, no real ``/tmp`` (a private tmpfs);
  a link out of the workspace points at a path that does not exist in there, so it is harmless;
* ``/proc`` is a fresh instance of the new PID namespace: host processes and their environments are
  invisible, and killing bwrap (``--die-with-parent``) tears the whole namespace down;
* there is no network interface but loopback of an empty network namespace;
* the environment is exactly what the caller passes (``--clearenv``), never the gateway's;
* ``--new-session`` stops a program from pushing input into the gateway's terminal (TIOCSTI);
* resource limits (CPU seconds, address space, file size, processes) are set on bwrap before it
  execs and are inherited by everything inside.

When bubblewrap is missing, :func:`find_bwrap` returns ``None`` and the caller refuses to run anything
(fail closed): there is no unsandboxed fallback.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"

# Top-level names that are symlinks into /usr on merged-/usr systems and real directories elsewhere.
_SYSTEM_ALIASES = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The few /etc files dynamically linked programs and locale/time handling read. Not passwd, not hosts.
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")


@dataclass(frozen=True)
class ResourceLimits:
    """Per-command kernel limits (``setrlimit``), inherited by every process inside the sandbox.

    Linux exempts real root from the process limit (``RLIMIT_NPROC``); the PID namespace and the
    timeout still end any process tree, but running the gateway as an ordinary user makes the cap
    count too. The cap counts all processes of that user, hence the generous default.
    """

    cpu_seconds: int = 60
    address_space_bytes: int = 2 * 1024**3
    file_size_bytes: int = 100 * 1024**2
    processes: int = 1024


def find_bwrap(program: str = "bwrap") -> str | None:
    """The bubblewrap executable (a name looked up on ``PATH``, or a path), or ``None`` when absent."""
    return shutil.which(program)


_WORKING: set[str] = set()


def probe(bwrap: str) -> str | None:
    """``None`` when ``bwrap`` can build the sandbox on this machine, else why not (its own words).

    Being installed is not enough: containers and hardened kernels may forbid the namespaces it needs.
    Success is remembered for the process; a failure is retried next time (the operator may fix it).
    """
    if bwrap in _WORKING:
        return None
    true = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"
    with tempfile.TemporaryDirectory(prefix="ep-bwrap-probe-") as tmp:
        root = Path(tmp).resolve()
        argv = sandbox_argv(bwrap, workspace=root, workdir=root, env={"PATH": "/usr/bin:/bin"}, argv=[true])
        try:
            done = subprocess.run(argv, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"}, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip()[:500] or f"exit status {done.returncode}"
    _WORKING.add(bwrap)
    return None


def sandbox_argv(
    bwrap: str,
    *,
    workspace: Path,
    workdir: Path,
    env: Mapping[str, str],
    argv: Sequence[str],
    masked: Sequence[Path] = (),
) -> list[str]:
    """The bwrap command line that runs ``argv`` in ``workdir`` with only ``workspace`` writable.

    Each path in ``masked`` (inside the workspace) is covered by an empty read-only ``/dev/null``.
    """
    cmd = [bwrap, "--ro-bind", "/usr", "/usr"]
    for alias in _SYSTEM_ALIASES:
        if os.path.islink(alias):
            cmd += ["--symlink", os.readlink(alias), alias]
        elif os.path.isdir(alias):
            cmd += ["--ro-bind", alias, alias]
    for name in _ETC_FILES:
        cmd += ["--ro-bind-try", name, name]
    cmd += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--bind", str(workspace), str(workspace),
        *[arg for path in masked for arg in ("--ro-bind", "/dev/null", str(path))],
        "--chdir", str(workdir),
        "--unshare-all",  # user (when possible), IPC, PID, network, UTS and cgroup namespaces
        "--hostname", "sandbox",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]  # fmt: skip
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--", *argv]
    return cmd


def rlimit_setter(limits: ResourceLimits, cpu_seconds: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` applying ``limits`` in the forked child just before it execs bwrap."""
    cpu = max(1, cpu_seconds if cpu_seconds is not None else limits.cpu_seconds)
    settings = (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, limits.address_space_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_CORE, 0),
    )

    def apply() -> None:
        for which, value in settings:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

    return apply
