"""One listening socket per worker (``SO_REUSEPORT``), so the kernel spreads connections evenly.

uvicorn's multi-worker mode binds one socket in the supervisor and lets every worker accept from it.
Under keep-alive load that is unfair: when a burst of connections arrives, the first worker to wake
accepts them all in one loop and keeps them for their lifetime; measured with 32 ``wrk`` connections,
one of two workers served every request while the other idled (``bench/gateway/workers.md``). With
``SO_REUSEPORT`` each worker listens on its own socket bound to the same address, and the kernel picks
the socket per new connection by a hash of its addresses.

uvicorn's supervisor hands each worker the sockets it was given by pickling them into the spawned
process. :class:`ReusePortListener` stands in for that socket: it pickles as "bind a fresh
``SO_REUSEPORT`` socket to host:port", so every worker, and every replacement the supervisor starts,
unpickles its own listener. The supervisor itself never listens (a listening socket nobody accepts on
would take its share of connections and leave them waiting).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn decides


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (uvicorn's server calls ``listen`` on it)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


def check_address(host: str, port: int) -> None:
    """Raise ``OSError`` now if the address is taken, instead of in every worker after the fork."""
    bind_reuseport(host, port).close()  # bound, never listening: takes no connections


@dataclass(frozen=True)
class ReusePortListener:
    """Pickles into a freshly bound ``SO_REUSEPORT`` socket in whichever process unpickles it."""

    host: str
    port: int

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return bind_reuseport, (self.host, self.port)


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")
