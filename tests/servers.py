"""Private servers for tests: Redis, PostgreSQL and ``ep serve`` itself, on free loopback ports, torn down after.

The packaged system services are never used. PostgreSQL refuses to run as root, so when the tests run as
root its data dir belongs to the ``postgres`` user (created when missing) and the binaries run through
``runuser``. A test that needs a server the machine lacks is skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/run_validation.sh installs it)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="ep-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        yield RedisServer(port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class PostgresServer:
    port: int
    user: str = "postgres"
    database: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--", *args]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries are not installed (scripts/run_validation.sh installs them)")
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="ep-pg-"))
    data, sockets = root / "data", root / "sock"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        _as_postgres(["true"])  # make sure the user exists
        entry = pwd.getpwnam("postgres")
        for path in (root, data, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                          "--no-sync", "-E", "UTF8"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        proc = subprocess.Popen(
            _as_postgres([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                          "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                          "-c", "fsync=off", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, proc, timeout=30)
            _wait_ready(port)
            yield PostgresServer(port)
        finally:
            # pg_ctl talks to the postmaster itself (runuser does not forward every signal).
            subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(port: int, timeout: float = 20.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                 connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


EP = str(Path(sys.executable).parent / "ep")  # the CLI installed next to this interpreter


def ep_env(workdir: Path, *, keep_ep_vars: bool = True, **upstreams: Any) -> dict[str, str]:
    """The environment of an ``ep serve`` under test: no master key, a SQLite ledger in ``workdir``, and
    ``EP_<NAME>_API_KEY`` / ``EP_<NAME>_BASE_URL`` for each fake upstream (``openai=fake_openai``).

    ``keep_ep_vars=False`` starts from an environment without any ``EP_*`` variable of the caller's.
    """
    env = {k: v for k, v in os.environ.items() if keep_ep_vars or not k.startswith("EP_")}
    env.pop("EP_MASTER_KEY", None)
    env["EP_DATABASE_URL"] = f"sqlite:///{workdir / 'ep.db'}"
    for name, fake in upstreams.items():
        env[f"EP_{name.upper()}_API_KEY"] = fake.api_key
        env[f"EP_{name.upper()}_BASE_URL"] = fake.base_url
    return env


class EpServe:
    """One gateway process (``ep serve --port P *flags``) whose output goes to a log file in ``workdir``.

    Tests that only need a running gateway use :func:`ep_serve`; the class is for those that kill
    it, restart it or run several.
    """

    def __init__(self, workdir: Path, env: dict[str, str], *flags: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = env
        self.flags = flags
        self.log = workdir / f"ep-serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> EpServe:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([EP, "serve", "--port", str(self.port), *self.flags], env=self.env,
                                         cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 30.0) -> EpServe:
        """Return once ``/health`` answers 200; fail with the process's output if it exits or never does."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"ep serve exited: {self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"ep serve did not come up: {self.output()[-2000:]}")
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """Ctrl-C (a graceful shutdown), then SIGKILL if it does not end within ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def ep_serve(workdir: Path, env: dict[str, str], *flags: str) -> Iterator[EpServe]:
    """A started and ready ``ep serve``, stopped on the way out whatever happened inside."""
    served = EpServe(workdir, env, *flags)
    try:
        yield served.start().wait_ready()
    finally:
        served.stop()
