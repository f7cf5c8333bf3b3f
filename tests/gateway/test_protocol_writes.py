"""How ``ep serve``'s HTTP protocol writes answers to the connection: a JSON answer's head and body in one
write (one system call, one TCP segment), a stream's head on its own when its body is not ready yet.

The protocol is driven with real request bytes and a transport that records what it is asked to write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from execution_platform.gateway.protocol import HeaderTimeoutProtocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def _serve_one(app: Any, request: bytes, *, wait: float = 0.3) -> RecordingTransport:
    config = uvicorn.Config(app, http=HeaderTimeoutProtocol, lifespan="off", log_config=None, proxy_headers=False)
    config.load()
    protocol = HeaderTimeoutProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.sleep(wait)
    protocol.connection_lost(None)
    return transport


REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


async def test_a_json_answer_is_written_in_one_piece() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    transport = await _serve_one(app, REQUEST)
    assert transport.writes == [
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n" b'{"ok":true}'
    ]


async def test_a_head_whose_body_is_not_ready_goes_out_alone_and_in_order() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        started.set()
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def client() -> RecordingTransport:
        return await _serve_one(app, REQUEST, wait=0.5)

    task = asyncio.ensure_future(client())
    await started.wait()
    await asyncio.sleep(0.05)  # a few turns of the loop: the head must not wait for the first event
    release.set()
    transport = await task
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    assert transport.writes == [head, b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]


async def _connection(monkeypatch: Any, timeout: str) -> tuple[HeaderTimeoutProtocol, RecordingTransport]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    monkeypatch.setenv("EP_SERVER_HEADER_TIMEOUT", timeout)
    config = uvicorn.Config(app, http=HeaderTimeoutProtocol, lifespan="off", log_config=None, proxy_headers=False)
    config.load()
    protocol = HeaderTimeoutProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_headers_split_over_reads_must_still_complete_in_time(monkeypatch: Any) -> None:
    protocol, transport = await _connection(monkeypatch, "0.2")
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")  # a whole request: answered, kept open
    await asyncio.sleep(0.3)
    assert not transport.closed and transport.writes[0].startswith(b"HTTP/1.1 204")
    protocol.data_received(b"GET / HTTP/1.1\r\nho")  # the next one stalls inside its headers
    await asyncio.sleep(0.1)
    protocol.data_received(b"st: x\r\n")
    assert not transport.closed
    await asyncio.sleep(0.3)
    assert transport.closed
    protocol.connection_lost(None)


async def test_a_silent_connection_is_closed(monkeypatch: Any) -> None:
    protocol, transport = await _connection(monkeypatch, "0.2")
    await asyncio.sleep(0.4)
    assert transport.closed
    protocol.connection_lost(None)
