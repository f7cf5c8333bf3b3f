"""What ``ep serve`` does before it serves: the schema upgrade kept out of the serving process, and
the warning that several workers without Redis enforce budgets and limits each on their own."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ep_env, ep_serve

MODEL = "openai/gpt-4o-mini"


def test_the_schema_is_upgraded_in_a_child_so_alembic_never_loads_in_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys\n"
        "from execution_platform.cli.serve import migrate_aside\n"
        f"migrate_aside({url!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"

    from execution_platform.storage import create_engine_from_url
    from execution_platform.storage.migrate import is_current

    assert is_current(create_engine_from_url(url))


def test_two_workers_without_redis_warn_that_limits_are_per_worker(fake_openai: Any, tmp_path: Path) -> None:
    env = ep_env(tmp_path, openai=fake_openai)
    env.pop("EP_REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with ep_serve(tmp_path, env, "--workers", "2") as gateway:
        r = httpx.post(gateway.url + "/v1/chat/completions", timeout=10,
                       json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        assert "without EP_REDIS_URL" in gateway.output()
        assert "exact per worker" in gateway.output()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _sockets(pid: int, port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (01 established, 0A listening) that
    this process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state and fields[9] in inodes:
                found.add(fields[9])
    return found


def test_two_workers_listen_on_their_own_sockets_and_share_a_burst_of_connections(
    fake_openai: Any, tmp_path: Path
) -> None:
    """Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads new connections over
    them; one shared socket lets the first worker to wake take a burst of keep-alive connections."""
    env = ep_env(tmp_path, openai=fake_openai)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with ep_serve(tmp_path, env, "--workers", "2") as gateway:
        assert gateway.proc is not None
        port = int(gateway.url.rsplit(":", 1)[1])
        time.sleep(1.0)  # both workers up: the gateway answers as soon as one is
        workers = [pid for pid in _children(gateway.proc.pid) if _sockets(pid, port, "0A")]
        listeners = [_sockets(pid, port, "0A") for pid in workers]
        assert len(workers) == 2 and listeners[0].isdisjoint(listeners[1]), listeners
        assert not _sockets(gateway.proc.pid, port, "0A")  # the supervisor takes no connections
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            for sock in clients:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            for sock in clients:
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            shares = sorted(len(_sockets(pid, port, "01")) for pid in workers)
        finally:
            for sock in clients:
                sock.close()
    assert sum(shares) == 32
    assert shares[0] >= 4, shares  # both hold a fair part (a split this uneven is ~1e-5 likely by hash)
