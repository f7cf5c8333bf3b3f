"""SSE behaviour: immediate headers, keep-alives in silences, and cancellation on client disconnect."""

from __future__ import annotations

import socket
import time

import httpx
import orjson

from tests.fakes import Fault, Reply

BODY = {"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def _raw_request(port: int, path: str, body: dict) -> socket.socket:
    payload = orjson.dumps(body)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n".encode() + payload
    )
    return sock


def test_client_disconnect_closes_upstream_during_its_silence(gateway, fake_openai) -> None:
    """The upstream stalls for 10 s mid-stream: its connection closing at all within a few seconds proves
    the disconnect cancelled it (no elapsed-time bound a loaded machine could break)."""
    fake_openai.enqueue(Fault("stall", after_chunks=1, delay=10, then=Reply(text="a b c d e f", chunks=6)))
    sock = _raw_request(gateway.port, "/v1/chat/completions", BODY)
    received = b""
    deadline = time.monotonic() + 5
    while b"data: " not in received and time.monotonic() < deadline:
        received += sock.recv(65536)
    assert b"200 OK" in received and b"data: " in received
    time.sleep(0.05)  # the upstream is now silent, mid-stream
    baseline = fake_openai.connections_closed
    sock.close()
    assert fake_openai.wait_connections_closed(baseline, timeout=5.0)


def test_keepalive_comment_during_silence(make_gateway, fake_anthropic) -> None:
    gw = make_gateway(keepalive=0.1, first_event_wait=0.05)
    fake_anthropic.enqueue(Fault("slow_first_byte", delay=0.5, then=Reply(text="late", chunks=1)))
    body = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 10, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", gw.url + "/v1/messages", json=body, timeout=5) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert ": keep-alive" in text  # headers (and a comment) went out before the slow upstream's first byte
    assert text.index(": keep-alive") < text.index("event: message_start")
    assert "event: message_stop" in text and "late" in text


def test_keepalive_comments_fill_a_silence_mid_stream_and_the_failure_still_ends_it(make_gateway, fake_openai) -> None:
    gw = make_gateway(keepalive=0.1, first_event_wait=0.05)
    fake_openai.enqueue(Fault("stall", after_chunks=1, delay=0.45, then=Reply(text="a b c", chunks=3)))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=BODY, timeout=5) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    first = text.index("data: ")
    assert text.count(": keep-alive") >= 2
    assert text.index(": keep-alive") > first  # the silence came after the first token
    assert '"error"' in text[text.rindex(": keep-alive"):]  # the upstream's drop still ends the stream, framed
