"""uvicorn's keep-alive rule under ``ep serve``'s protocol: a connection idle ``timeout_keep_alive`` seconds
after its last response is closed; one that keeps sending requests is not, however long it lives.

The protocol is driven with real request bytes and a transport that records writes and the close. The
timeout (1.5 s) is thirty times the pause between requests, so only a stall of the whole process for
more than a second could close a busy connection (which would then rightly count as idle); the idle
bound is several times the timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from execution_platform.gateway.protocol import HeaderTimeoutProtocol

from .test_protocol_writes import RecordingTransport

KEEP_ALIVE = 1.5
REQUEST = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def connection() -> tuple[HeaderTimeoutProtocol, RecordingTransport]:
    config = uvicorn.Config(app, http=HeaderTimeoutProtocol, lifespan="off", log_config=None, proxy_headers=False,
                            timeout_keep_alive=KEEP_ALIVE)
    config.load()
    protocol = HeaderTimeoutProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def _until_closed(transport: RecordingTransport, seconds: float) -> bool:
    for _ in range(int(seconds / 0.02)):
        if transport.closed:
            return True
        await asyncio.sleep(0.02)
    return transport.closed


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    protocol, transport = connection()
    protocol.data_received(REQUEST)
    await asyncio.sleep(0.05)
    assert b"".join(transport.writes).count(b"HTTP/1.1 200") == 1 and not transport.closed
    assert await _until_closed(transport, KEEP_ALIVE * 8)
    protocol.connection_lost(None)


async def test_a_busy_connection_outlives_the_timeout_and_then_closes_when_idle() -> None:
    protocol, transport = connection()
    loop = asyncio.get_running_loop()
    began = loop.time()
    answered = 0
    while loop.time() - began < KEEP_ALIVE * 3:
        protocol.data_received(REQUEST)
        await asyncio.sleep(0.05)
        answered += 1
        assert not transport.closed, f"closed while busy, after {answered} requests"
    assert b"".join(transport.writes).count(b"HTTP/1.1 200") == answered
    assert await _until_closed(transport, KEEP_ALIVE * 8)
    protocol.connection_lost(None)


async def test_a_request_still_under_way_when_the_timer_fires_keeps_the_connection() -> None:
    release = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await app(scope, receive, send)

    protocol, transport = connection()
    protocol.app = slow
    protocol.data_received(REQUEST)
    await asyncio.sleep(KEEP_ALIVE * 0.2)
    protocol.data_received(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")  # the first timer fires during this one
    await asyncio.sleep(KEEP_ALIVE * 1.5)
    assert not transport.closed
    release.set()
    await asyncio.sleep(0.05)
    assert b"".join(transport.writes).count(b"HTTP/1.1 200") == 2
    assert await _until_closed(transport, KEEP_ALIVE * 8)
    protocol.connection_lost(None)
