"""The chat calls' keep-alive HTTP/1.1 client against a server that sends exactly the bytes scripted:
framing (length, chunked, until close, gzip), connection reuse and its limits, failures and TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multidict import CIMultiDict

from execution_platform.providers.http import ConnectionLost, Deadline, H1Pool, InvalidTarget, Target
from tests.fakes.raw_http import RawHTTP, chunked_answer, gzip_answer, json_answer

HEADERS = CIMultiDict({"content-type": "application/json", "authorization": "Bearer k"})


@pytest.fixture
async def server() -> AsyncIterator[RawHTTP]:
    fake = await RawHTTP().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def pool() -> AsyncIterator[H1Pool]:
    pool = H1Pool(asyncio.get_running_loop())
    yield pool
    await pool.aclose()


async def post(pool: H1Pool, target: Target, body: bytes = b'{"q":1}') -> tuple[int, bytes]:
    resp = await pool.post(target, body, connect_timeout=2)
    return resp.status, await resp.read()


async def test_a_length_framed_answer_and_the_request_as_sent(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(json_answer(b'{"a":1}', status=201, extra="x-thing: yes\r\n"))
    resp = await pool.post(Target(server.url, HEADERS), b'{"q":1}', connect_timeout=2)
    assert resp.status == 201 and resp.headers["X-Thing"] == "yes"
    assert await resp.read() == b'{"a":1}'
    head = server.requests[0].head.decode()
    assert head.startswith("POST /v1/chat HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}\r\n" in head and "authorization: Bearer k\r\n" in head
    assert "content-length: 7\r\n" in head and server.requests[0].body == b'{"q":1}'


async def test_a_chunked_answer_arrives_piece_by_piece(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(chunked_answer(b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n", pause=0.05))
    resp = await pool.post(Target(server.url, HEADERS), b"{}", connect_timeout=2)
    pieces = []
    while piece := await resp.readany():
        pieces.append(piece)
    resp.release()
    assert b"".join(pieces) == b"data: 1\n\ndata: 2\n\ndata: 3\n\n" and len(pieces) == 3
    assert await post(pool, Target(server.url, HEADERS)) == (200, b'{"ok":true}')
    assert server.connections == 1  # read to its end, the connection was kept


async def test_an_answer_already_in_is_read_without_waiting(server: RawHTTP, pool: H1Pool) -> None:
    """``read_now``: the whole body when it came with the head (then the connection is kept), else
    None and the answer is left to ``read``."""
    target = Target(server.url, HEADERS)
    server.enqueue(json_answer(b'{"a":1}'))
    resp = await pool.post(target, b"{}", connect_timeout=2)
    assert resp.read_now() == b'{"a":1}'
    server.enqueue(chunked_answer(b"ab", b"cd", pause=0.05))
    resp = await pool.post(target, b"{}", connect_timeout=2)
    assert resp.read_now() is None
    assert await resp.read() == b"abcd"
    assert server.connections == 1  # both read to their end: one kept-alive connection


async def test_what_is_in_already_is_taken_without_waiting(server: RawHTTP, pool: H1Pool) -> None:
    """``readany_now``: the bytes received so far, ``b""`` once the body has ended, None while the
    next piece is still to come (then ``readany`` waits for it)."""
    server.enqueue(chunked_answer(b"ab", b"cd", pause=0.05))
    resp = await pool.post(Target(server.url, HEADERS), b"{}", connect_timeout=2)
    pieces = []
    while True:
        piece = resp.readany_now()
        if piece is None:
            piece = await resp.readany()
        if not piece:
            break
        pieces.append(piece)
    assert b"".join(pieces) == b"abcd"
    assert resp.readany_now() == b""
    resp.release()
    assert await post(pool, Target(server.url, HEADERS)) == (200, b'{"ok":true}')
    assert server.connections == 1


async def test_a_chunked_answer_read_whole(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(chunked_answer(b"ab", b"cd"))
    assert await post(pool, Target(server.url, HEADERS)) == (200, b"abcd")


async def test_an_answer_without_length_ends_with_the_connection(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it", None])
    target = Target(server.url, HEADERS)
    assert await post(pool, target) == (200, b"all of it")
    assert await post(pool, target) == (200, b'{"ok":true}')
    assert server.connections == 2


async def test_keep_alive_reuses_one_connection(server: RawHTTP, pool: H1Pool) -> None:
    target = Target(server.url, HEADERS)
    for _ in range(3):
        assert await post(pool, target) == (200, b'{"ok":true}')
    assert server.connections == 1 and [r.connection for r in server.requests] == [1, 1, 1]


async def test_an_answer_saying_close_is_not_reused(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(json_answer(b"{}", extra="connection: close\r\n"))
    target = Target(server.url, HEADERS)
    await post(pool, target)
    await post(pool, target)
    assert server.connections == 2


async def test_a_request_saying_close_never_reuses(server: RawHTTP, pool: H1Pool) -> None:
    target = Target(server.url, CIMultiDict({**HEADERS, "connection": "close"}))
    await post(pool, target)
    await post(pool, target)
    assert server.connections == 2 and "connection: close\r\n" in server.requests[0].head.decode()


async def test_a_connection_the_server_closed_while_idle_is_replaced(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([*json_answer(b"{}"), None])  # answers, then closes without saying so
    target = Target(server.url, HEADERS)
    await post(pool, target)
    await asyncio.sleep(0.1)  # the close reaches the client while the connection is idle
    assert await post(pool, target) == (200, b'{"ok":true}')
    assert server.connections == 2


async def test_an_error_status_is_an_answer_and_keeps_the_connection(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(json_answer(b'{"error":"no"}', status=429, extra="retry-after: 3\r\n"))
    target = Target(server.url, HEADERS)
    resp = await pool.post(target, b"{}", connect_timeout=2)
    assert (resp.status, resp.headers["retry-after"], await resp.read()) == (429, "3", b'{"error":"no"}')
    await post(pool, target)
    assert server.connections == 1


async def test_a_connection_lost_before_the_answer_fails(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([None])
    with pytest.raises(ConnectionLost):
        await post(pool, Target(server.url, HEADERS))


async def test_a_connection_lost_mid_body_fails(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this", None])
    resp = await pool.post(Target(server.url, HEADERS), b"{}", connect_timeout=2)
    with pytest.raises(ConnectionLost):
        await resp.read()
    server.enqueue([*chunked_answer(b"one")[:2], None])
    resp = await pool.post(Target(server.url, HEADERS), b"{}", connect_timeout=2)
    assert await resp.readany() == b"one"
    with pytest.raises(ConnectionLost):
        await resp.readany()


async def test_a_malformed_answer_fails_and_drops_the_connection(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([b"NOT HTTP AT ALL\r\n\r\n"])
    with pytest.raises(ConnectionLost, match="malformed"):
        await post(pool, Target(server.url, HEADERS))
    await post(pool, Target(server.url, HEADERS))
    assert server.connections == 2


async def test_endless_headers_are_refused(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * 1000 + b"\r\n" * 1 + b"x-more: b\r\n" * 20000])
    with pytest.raises(ConnectionLost, match="too large"):
        await post(pool, Target(server.url, HEADERS))


async def test_a_deadline_while_waiting_drops_the_connection(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue([5.0, *json_answer(b"late")])
    target = Target(server.url, HEADERS)
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with Deadline(loop, 0.1):
            await post(pool, target)
    # The late answer can never be taken for the next call's: that one goes out on a new connection.
    assert await post(pool, target) == (200, b'{"ok":true}')
    assert server.connections == 2


async def test_an_abandoned_answer_closes_the_connection(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(chunked_answer(b"a", b"b", pause=1.0))
    target = Target(server.url, HEADERS)
    resp = await pool.post(target, b"{}", connect_timeout=2)
    assert await resp.readany() == b"a"
    resp.close()
    await post(pool, target)
    assert server.connections == 2


async def test_gzip_is_decoded(server: RawHTTP, pool: H1Pool) -> None:
    server.enqueue(gzip_answer(b'{"packed":true}' * 100))
    assert await post(pool, Target(server.url, HEADERS)) == (200, b'{"packed":true}' * 100)
    assert "accept-encoding: identity\r\n" in server.requests[0].head.decode()


async def test_a_large_answer_arrives_whole(server: RawHTTP, pool: H1Pool) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes on the way
    server.enqueue(json_answer(body))
    assert await post(pool, Target(server.url, HEADERS)) == (200, body)


async def test_a_slow_reader_of_a_large_stream_gets_every_byte(server: RawHTTP, pool: H1Pool) -> None:
    pieces = [bytes([i]) * 65536 for i in range(16)]
    server.enqueue(chunked_answer(*pieces))
    resp = await pool.post(Target(server.url, HEADERS), b"{}", connect_timeout=2)
    received = b""
    while piece := await resp.readany():
        received += piece
        await asyncio.sleep(0.01)
    assert received == b"".join(pieces)


def test_targets_refuse_what_http_cannot_carry() -> None:
    with pytest.raises(InvalidTarget):
        Target("ftp://example.com/x", HEADERS)
    with pytest.raises(InvalidTarget):
        Target("http://example.com/x", CIMultiDict({"x-evil": "a\r\nx-injected: 1"}))
    with pytest.raises(InvalidTarget):
        Target("http://example.com/x", CIMultiDict({"authorization": "Bearer \u2603"}))
    assert Target("https://api.example.com/v1/messages", HEADERS).head.startswith(
        b"POST /v1/messages HTTP/1.1\r\nhost: api.example.com\r\n")


async def test_closing_the_pool_closes_its_connections(server: RawHTTP) -> None:
    pool = H1Pool(asyncio.get_running_loop())
    await post(pool, Target(server.url, HEADERS))
    assert server.open == 1
    await pool.aclose()
    for _ in range(50):
        if server.open == 0:
            break
        await asyncio.sleep(0.05)
    assert server.open == 0
    with pytest.raises(RuntimeError):
        await post(pool, Target(server.url, HEADERS))


async def test_tls_through_the_loop(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    fake = await RawHTTP(tls=served).start()
    trusted = ssl.create_default_context(cafile=str(cert))
    pool = H1Pool(asyncio.get_running_loop(), tls=trusted)
    try:
        target = Target(fake.url, HEADERS)
        assert await post(pool, target) == (200, b'{"ok":true}')
        assert await post(pool, target) == (200, b'{"ok":true}')
        assert fake.connections == 1
        untrusting = H1Pool(asyncio.get_running_loop(), tls=ssl.create_default_context())
        with pytest.raises(ssl.SSLError):
            await post(untrusting, target)
        await untrusting.aclose()
    finally:
        await pool.aclose()
        await fake.stop()


async def test_calls_beyond_the_connection_limit_wait_for_one(server: RawHTTP) -> None:
    pool = H1Pool(asyncio.get_running_loop(), limit=2)
    server.enqueue(*[[0.2, *json_answer(b"{}")] for _ in range(2)])
    target = Target(server.url, HEADERS)
    try:
        answers = await asyncio.gather(*(post(pool, target) for _ in range(5)))
        assert [status for status, _ in answers] == [200] * 5
        assert server.connections == 2  # the other three went out on the first two, once free
    finally:
        await pool.aclose()
