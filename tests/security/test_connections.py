"""Connection hygiene of a real ``ep serve``: idle, slow-header and slow-body sockets are closed after their
configured timeouts, a connection cap answers 503, and 5 000 idle sockets do not stop /health or a chat.

Timeouts here are short (1 s) and every bound is several times larger, so a loaded machine cannot fail
them; on a server without these timeouts the sockets stay open and the bounds are passed.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import Reply
from tests.fakes.base import FakeUpstream
from tests.servers import ep_env, ep_serve

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CLOSE_WITHIN = 6.0  # seconds; the configured timeouts are 1 s


@contextlib.contextmanager
def served_with(fake: FakeUpstream, tmp: Path, server: str, *flags: str) -> Iterator[tuple[str, int]]:
    """``ep serve`` with ``server:`` settings, in front of the fake OpenAI upstream."""
    config = tmp / "ep.yaml"
    config.write_text(f"server: {{{server}}}\n")
    with ep_serve(tmp, ep_env(tmp, openai=fake), "--config", str(config), *flags) as gateway:
        yield gateway.url, gateway.port


@pytest.fixture(scope="module")
def short(fake_servers: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    settings = "keep_alive_timeout: 1, header_timeout: 1, body_timeout: 1, max_connections: 40"
    with served_with(fake_servers["openai"], tmp_path_factory.mktemp("short"), settings) as served:
        yield served


def _closed_within(sock: socket.socket, seconds: float, *, trickle: bytes = b"") -> tuple[bool, bytes]:
    """Read until the server closes the socket (True) or ``seconds`` pass (False); optionally trickle bytes."""
    sock.settimeout(0.25)
    received = b""
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        if trickle and sent < len(trickle):
            with contextlib.suppress(OSError):
                sock.sendall(trickle[sent : sent + 1])
            sent += 1
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def test_idle_keep_alive_connection_is_closed(short: tuple[str, int]) -> None:
    _, port = short
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        closed, received = _closed_within(sock, CLOSE_WITHIN - 2)
    assert received.startswith(b"HTTP/1.1 200")
    assert closed, "an idle keep-alive connection stayed open past its timeout"


def test_connection_that_sends_nothing_is_closed(short: tuple[str, int]) -> None:
    _, port = short
    with socket.create_connection(("127.0.0.1", port)) as sock:
        closed, _ = _closed_within(sock, CLOSE_WITHIN)
    assert closed, "a silent connection stayed open"


def test_slow_headers_are_cut_off(short: tuple[str, int]) -> None:
    """Slowloris: a header byte every 250 ms keeps any idle timer happy, never the header deadline."""
    _, port = short
    with socket.create_connection(("127.0.0.1", port)) as sock:
        closed, received = _closed_within(sock, CLOSE_WITHIN, trickle=b"GET /health HTTP/1.1\r\n" + b"x-a: b\r\n" * 40)
    assert closed and b"200" not in received


def test_slow_headers_on_a_kept_alive_connection_are_cut_off(short: tuple[str, int]) -> None:
    _, port = short
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        time.sleep(0.3)
        closed, received = _closed_within(sock, CLOSE_WITHIN, trickle=b"GET /health HTTP/1.1\r\n" + b"x-a: b\r\n" * 40)
    assert closed and received.count(b"HTTP/1.1 200") == 1


def test_stalled_body_is_a_408_and_closed(short: tuple[str, int]) -> None:
    _, port = short
    for path in ("/v1/chat/completions", "/admin/keys"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         "content-length: 1000\r\n\r\n".encode() + b'{"model": "openai/gpt')
            closed, received = _closed_within(sock, CLOSE_WITHIN)
        assert received.startswith(b"HTTP/1.1 408"), (path, received[:300])
        assert b"request_timeout" in received and closed


def test_connection_cap_answers_503_and_recovers(short: tuple[str, int]) -> None:
    url, port = short
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(45)]
    try:
        refused = httpx.get(url + "/health", timeout=10)
        assert refused.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while (answer := httpx.get(url + "/health", timeout=10)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 200


def test_serve_flags_set_the_timeouts(fake_openai: FakeUpstream, tmp_path: Path) -> None:
    flags = ("--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1", "--max-connections", "500")
    with served_with(fake_openai, tmp_path, "", *flags) as (_, port):
        with socket.create_connection(("127.0.0.1", port)) as silent:
            closed, _ = _closed_within(silent, CLOSE_WITHIN)
        assert closed
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            closed, received = _closed_within(sock, CLOSE_WITHIN)
        assert received.startswith(b"HTTP/1.1 408") and closed


IDLE = 5000
IDLE_HEADER_TIMEOUT = 8  # long enough to measure with all of them open, short enough to see them closed


def test_5000_idle_sockets_do_not_stop_health_or_a_chat(fake_openai: FakeUpstream, tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * IDLE + 512  # this process's ends plus the server's (it raises its own limit too)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"open-files hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    try:
        with served_with(fake_openai, tmp_path, f"header_timeout: {IDLE_HEADER_TIMEOUT}") as (url, port):
            sockets: list[socket.socket] = []
            try:
                started = time.monotonic()
                for _ in range(IDLE):
                    sockets.append(socket.create_connection(("127.0.0.1", port), timeout=30))
                opened = time.monotonic() - started
                # The accept queue is FIFO: this request is served only after all idle sockets were accepted.
                t0 = time.monotonic()
                health = httpx.get(url + "/health", timeout=30)
                health_s = time.monotonic() - t0
                fake_openai.enqueue(Reply(text="still serving"))
                t0 = time.monotonic()
                chat = httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=30)
                chat_s = time.monotonic() - t0
                print(f"{IDLE} idle sockets opened in {opened:.2f} s; /health {health_s * 1000:.0f} ms, "
                      f"chat {chat_s * 1000:.0f} ms")
                assert health.status_code == 200
                assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "still serving"
                alive = sum(1 for s in sockets[-100:] if _still_open(s))
                assert alive == 100  # the idle sockets were held, not refused
                # ... and then let go: the header deadline frees every one of them.
                deadline = time.monotonic() + IDLE_HEADER_TIMEOUT + 30
                while (left := sum(1 for s in sockets if _still_open(s))) and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert left == 0, f"{left} idle sockets still held"
            finally:
                for sock in sockets:
                    sock.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
