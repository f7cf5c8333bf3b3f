"""Exclusive locks on a file beside a SQLite database, shared by every process that opens it.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which polls: it
sleeps 1, 2, 5, 10 … up to 100 ms between tries, however soon the file is free again. Two ``ep serve``
workers committing ledger batches back to back on one file then spent much of their time asleep while
nobody held it: 1.1× one worker's throughput, p99 360 ms (``bench/gateway/workers.py``). An ``flock``
on a side file queues the writers in the kernel instead, and a waiter wakes the moment the holder lets
go. Taken around transactions that are certain to write (a ledger batch, a schema upgrade); other,
rare writes still rely on SQLite's busy timeout, which the lock does not change.

A PostgreSQL database, an in-memory SQLite one, or a platform without ``flock`` gets a lock that does
nothing: the server (or the single connection) already orders writers without polling.
"""

from __future__ import annotations

import os
from types import TracebackType

from sqlalchemy.engine import Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system
    fcntl = None  # type: ignore[assignment]


class FileLock:
    """``with lock:`` holds an exclusive ``flock`` on ``path`` (created if missing); with no path, nothing.

    The file is opened on first use and kept open, so a lock taken once per ledger batch costs two
    system calls, not four. Not re-entrant; one per thread that takes it (``flock`` locks belong to an
    open file, so two of them in one process exclude each other like two processes do).
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self.path is None:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def beside_sqlite(engine: Engine, suffix: str) -> FileLock:
    """The lock ``<database file>.<suffix>`` for a SQLite file database; a no-op lock otherwise."""
    database = engine.url.database
    if fcntl is None or engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return FileLock(None)
    return FileLock(f"{database}.{suffix}")
