"""Auth edges: /metrics scope, HEAD /health, an upstream refusing the gateway's key, the master key minimum."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import make_gateway  # noqa: F401  (fixture)
from tests.servers import EP, free_port

from ._edge_helpers import ANTHROPIC_CHAT, CHAT, MASTER, bearer, new_key, sql_keys


def test_metrics_needs_the_master_key_or_the_metrics_scope(make_gateway, tmp_path: Path) -> None:  # noqa: F811
    keys, db = sql_keys(tmp_path)
    gw = make_gateway({"master_key": MASTER, "database_url": db}, key_store=keys)
    plain = new_key(gw.url)
    scoped = new_key(gw.url, scopes=["metrics"])
    assert httpx.get(gw.url + "/metrics", headers=bearer(MASTER)).status_code == 200
    denied = httpx.get(gw.url + "/metrics", headers=bearer(plain))
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_denied"
    allowed = httpx.get(gw.url + "/metrics", headers=bearer(scoped))
    assert allowed.status_code == 200 and "# TYPE" in allowed.text
    unknown = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER), json={"scopes": ["admin"]})
    assert unknown.status_code == 400


def test_keys_cli_creates_a_metrics_scoped_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from execution_platform.cli import app as cli_app

    monkeypatch.setenv("EP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = CliRunner().invoke(cli_app, ["keys", "create", "--scopes", "metrics"])
    assert result.exit_code == 0, result.output
    assert '"scopes": [\n    "metrics"\n  ]' in result.output
    bad = CliRunner().invoke(cli_app, ["keys", "create", "--scopes", "root"])
    assert bad.exit_code != 0 and "unknown scope root" in bad.output


def test_head_health_answers_200_without_a_key(make_gateway) -> None:  # noqa: F811
    gw = make_gateway({"master_key": MASTER})
    r = httpx.head(gw.url + "/health")
    assert r.status_code == 200 and r.content == b""


def test_upstream_refusing_the_gateway_key_is_a_502_on_every_surface(make_gateway) -> None:  # noqa: F811
    gw = make_gateway({"openai_api_key": "sk-wrong-gateway-key-000"})
    openai = httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
    assert openai.status_code == 502, openai.text
    assert openai.json()["error"]["type"] == "upstream_authentication_error"
    assert openai.json()["error"]["code"] == "upstream_authentication_error"
    assert "wrong-gateway" not in openai.text
    native = httpx.post(gw.url + "/chat", json=CHAT)
    assert native.status_code == 502 and native.json()["error"]["type"] == "upstream_authentication_error"
    anthropic = httpx.post(gw.url + "/v1/messages", json=ANTHROPIC_CHAT)
    assert anthropic.status_code == 502, anthropic.text
    assert anthropic.json() == {"type": "error", "error": {"type": "upstream_authentication_error",
                                                           "message": anthropic.json()["error"]["message"]}}
    streamed = httpx.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True})
    assert streamed.status_code == 502 and streamed.json()["error"]["type"] == "upstream_authentication_error"


def test_a_client_key_refused_by_the_gateway_is_still_a_401(make_gateway) -> None:  # noqa: F811
    gw = make_gateway({"master_key": MASTER})
    r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer("not-a-key-at-all-123"))
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("master", ["   ", "", "short-8c", "x" * 15, " " * 10 + "abcdefghij"])
def test_serve_refuses_a_blank_or_short_master_key(master: str, tmp_path: Path) -> None:
    env = {**os.environ, "EP_MASTER_KEY": master, "EP_DATABASE_URL": f"sqlite:///{tmp_path / 'ep.db'}"}
    proc = subprocess.run(
        [EP, "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "at least 16 non-blank characters" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_app_factory_refuses_a_short_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from execution_platform.gateway.app import create_app_from_env

    monkeypatch.setenv("EP_MASTER_KEY", "short")
    with pytest.raises(SystemExit, match="at least 16 non-blank characters"):
        create_app_from_env()
