"""A loopback HTTP/1.1 server that answers with scripted bytes, for testing an HTTP client's framing.

The other fakes speak an API through aiohttp's server, which always frames its answers correctly;
this one sends exactly the bytes a test gives (a length, chunks, no length, a broken status line, a
close half-way), on the test's own event loop, and records each connection and request it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from collections import deque
from dataclasses import dataclass, field

Step = bytes | float | None  # bytes: send them; float: wait that many seconds; None: close the connection


def json_answer(body: bytes, *, status: int = 200, extra: str = "") -> list[Step]:
    """A complete answer framed by ``content-length``."""
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return [head.encode() + body]


def chunked_answer(*pieces: bytes, pause: float = 0.0) -> list[Step]:
    """An answer in chunked encoding, one step per chunk (with ``pause`` seconds between them)."""
    steps: list[Step] = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
    for piece in pieces:
        steps.append(b"%x\r\n%b\r\n" % (len(piece), piece))
        if pause:
            steps.append(pause)
    steps.append(b"0\r\n\r\n")
    return steps


def gzip_answer(body: bytes) -> list[Step]:
    packed = gzip.compress(body)
    head = f"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {len(packed)}\r\n\r\n"
    return [head.encode() + packed]


@dataclass
class Seen:
    head: bytes
    body: bytes
    connection: int


@dataclass
class RawHTTP:
    """Answers requests in order from ``answers`` (a default JSON answer once they run out)."""

    answers: deque[list[Step]] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    open: int = 0
    tls: ssl.SSLContext | None = None
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1/chat"

    def enqueue(self, *answers: list[Step]) -> None:
        self.answers.extend(answers)

    async def start(self) -> RawHTTP:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.requests.append(Seen(head, body, number))
                steps = self.answers.popleft() if self.answers else json_answer(b'{"ok":true}')
                for step in steps:
                    if step is None:
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                        continue
                    writer.write(step)
                    await writer.drain()
        except ConnectionError:
            return
        finally:
            self.open -= 1
            writer.close()
