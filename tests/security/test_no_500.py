"""No input makes the gateway answer 500: deep JSON, edge dates, odd admin fields, a client that drops mid-body."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from execution_platform.cli import app as cli_app
from tests.fakes.base import FakeUpstream
from tests.gateway.conftest import make_gateway  # noqa: F401  (fixture)
from tests.gateway.server import GatewayServer, start_gateway

from ._edge_helpers import CHAT, MASTER, bearer, sql_keys

DEPTH = 1000


@pytest.fixture(scope="module")
def open_gateway(fake_servers: dict[str, FakeUpstream]) -> Iterator[GatewayServer]:
    """One open gateway for the many parametrised read-only cases of this module."""
    server = start_gateway({name: fake_servers[name] for name in ("openai", "anthropic", "gemini")})
    yield server
    server.stop()
SURFACES = [
    ("/chat", {}),
    ("/v1/chat/completions", {}),
    ("/v1/messages", {"max_tokens": 16}),
    ("/v1/embeddings", {"input": "hi", "model": "openai/text-embedding-3-small"}),
    ("/v1/tools/invoke", {"name": "read_file"}),
]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("path", "extra"), SURFACES)
@pytest.mark.parametrize("field", ["metadata", "provider_options", "tools", "x", "args", "input"])
def test_deep_json_is_a_400_on_every_surface(open_gateway, fake_openai, path, extra, field) -> None:
    gw = open_gateway
    body = '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
    body += ", ".join(f'"{k}": "{v}"' if isinstance(v, str) else f'"{k}": {v}' for k, v in extra.items() if k != field)
    body = body.rstrip(", ") + (", " if extra else "") + f'"{field}": {_deep(DEPTH)}}}'
    r = httpx.post(gw.url + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, (path, field, r.status_code, r.text[:300])
    assert fake_openai.requests == []


@pytest.mark.parametrize("depth", [65, 300, DEPTH, 5000])
def test_deep_json_in_a_message_is_a_400(open_gateway, depth: int) -> None:
    gw = open_gateway
    content = '{"type": "text", "text": "hi", "cache_control": ' + "{\"a\": " * depth + "1" + "}" * depth + "}"
    body = '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": [' + content + "]}]}"
    for path in ("/chat", "/v1/chat/completions", "/v1/messages"):
        r = httpx.post(gw.url + path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, depth, r.text[:300])


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "garbage", "9999-12-31T23:59:59-12:00",
                                   "0001-01-01T00:00:00+14:00", "2026-13-01", "\u0000" * 10, "9" * 4000])
@pytest.mark.parametrize("param", ["since", "until"])
def test_costs_edge_dates_are_a_400(open_gateway, param: str, value: str) -> None:
    gw = open_gateway
    r = httpx.get(gw.url + "/costs", params={param: value})
    assert r.status_code == 400, (param, value, r.status_code, r.text[:200])
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "garbage"])
@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_ep_costs_edge_dates_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str,
                                               value: str) -> None:
    monkeypatch.setenv("EP_DATABASE_URL", f"sqlite:///{tmp_path / 'ep.db'}")
    result = CliRunner().invoke(cli_app, ["costs", flag, value])
    assert result.exit_code not in (0, 1), result.output  # a usage error (2), not a crash (1)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and value in result.output


def test_admin_key_body_with_edge_values_is_not_a_500(make_gateway, tmp_path: Path) -> None:  # noqa: F811
    keys, db = sql_keys(tmp_path)
    gw = make_gateway({"master_key": MASTER, "database_url": db}, key_store=keys)
    body = {"budget_period": "week", "budget_usd": 0.0, "models": [], "name": "", "personas": [], "rpm": 1,
            "team": "", "tpm": 1}
    r = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["budget_period"] == "week" and r.json()["team"] is None
    for odd in ({"team": "t" * 129}, {"models": ["m" * 257]}, {"personas": [""]}, {"name": "n" * 257},
                {"models": ["m"] * 1001}, {"budget_period": "fortnight"}, {"rpm": 2**31}, {"budget_usd": 1e13}):
        r = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER), json=odd)
        assert r.status_code == 400, (odd, r.status_code, r.text[:200])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat", "/admin/keys"])
def test_client_dropping_mid_body_is_a_499_logged_at_info(make_gateway, caplog, path: str) -> None:  # noqa: F811
    gw = make_gateway()
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     "content-length: 100000\r\n\r\n".encode() + b'{"model": "openai/gpt-4o-mini", "mess')
        time.sleep(0.2)
    metrics = ""
    deadline = time.monotonic() + 10
    while f'route="{path}",status="499"' not in metrics and time.monotonic() < deadline:
        time.sleep(0.05)
        metrics = httpx.get(gw.url + "/metrics").text
    assert f'route="{path}",status="499"' in metrics, [line for line in metrics.splitlines() if path in line]
    assert f'route="{path}",status="500"' not in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any("disconnected" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_a_body_of_odd_json_values_is_a_400_not_a_500(open_gateway) -> None:
    gw = open_gateway
    for raw in (b"[]", b"1e999", b'"x"', b"null", b'{"model": 1e999, "messages": []}', b"\xff\xfe"):
        for path in ("/chat", "/v1/chat/completions", "/v1/messages"):
            r = httpx.post(gw.url + path, content=raw, headers={"content-type": "application/json"})
            assert r.status_code < 500, (path, raw, r.text[:200])
    assert httpx.post(gw.url + "/chat", json=CHAT).status_code != 500


def test_client_leaving_a_stream_is_a_499_logged_at_info(make_gateway, fake_openai, caplog) -> None:  # noqa: F811
    from tests.fakes import Fault, Reply

    gw = make_gateway()
    caplog.set_level(logging.INFO)
    fake_openai.enqueue(Fault("stall", after_chunks=1, delay=5, then=Reply(text="one two three", chunks=3)))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the stream is flowing; now walk away
    metrics = ""
    deadline = time.monotonic() + 10
    while 'route="/v1/chat/completions",status="499"' not in metrics and time.monotonic() < deadline:
        time.sleep(0.05)
        metrics = httpx.get(gw.url + "/metrics").text
    assert 'route="/v1/chat/completions",status="499"' in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
