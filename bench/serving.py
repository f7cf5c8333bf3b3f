"""What the benchmarks share about a served process: free ports, waiting for it, and what its whole
process tree costs (CPU ticks, resident memory), read from /proc.

A gateway may be a supervisor with workers (``--workers 2``, LiteLLM, nginx), so CPU and memory are
always summed over the process and its live descendants: a subject cannot look cheap by doing its
work in a child.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1, headers=headers)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, utime+stime ticks, resident pages) for every process we can read."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]))
    return table


def tree(pid: int, *, descendants: bool = True) -> list[int]:
    """``pid`` and (unless told not to) its live descendants."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        if current in table:
            found.append(current)
        if descendants:
            stack.extend(children.get(current, []))
    return found


def tree_cpu_ticks(pid: int, *, descendants: bool = True) -> int:
    """utime+stime of ``pid`` and its live descendants (workers outlive the measurement)."""
    table = _processes()
    return sum(table[p][1] for p in tree(pid, descendants=descendants) if p in table)


def tree_rss_mb(pid: int, *, descendants: bool = True) -> float:
    """Resident memory of ``pid`` and its live descendants, in MB (shared pages counted per process,
    as ``ps`` does: an upper bound for a forked tree)."""
    table = _processes()
    return sum(table[p][2] for p in tree(pid, descendants=descendants) if p in table) * PAGE / 1e6


def nginx_config(work: Path, http: str) -> Path:
    """An nginx configuration in ``work`` (one worker, foreground, no access log, its temp files in
    ``work``) whose ``http`` block holds ``http``; returns its path, for ``nginx -c PATH -p WORK``."""
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
{http}
}}
""")
    return conf
