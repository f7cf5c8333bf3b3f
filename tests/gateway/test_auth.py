"""Master key, virtual keys (created over HTTP, stored hashed), per-key model scope, the bind guard."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from execution_platform.cli import app as cli_app
from execution_platform.storage.keys import hash_key
from tests.fakes import Reply

from .conftest import MASTER

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_master_key_guards_every_route_but_health(make_gateway) -> None:
    gw = make_gateway({"master_key": MASTER})
    assert httpx.get(gw.url + "/health").status_code == 200
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/metrics"),
                         ("GET", "/admin/keys"), ("GET", "/openapi.json")]:
        r = httpx.request(method, gw.url + path, json=CHAT)
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "authentication_error"
        assert r.headers["x-ep-request-id"]
    r = httpx.post(gw.url + "/v1/messages", json={}, headers={"x-api-key": "wrong"})
    assert r.status_code == 401 and r.json()["type"] == "error"
    assert httpx.get(gw.url + "/v1/models", headers=bearer(MASTER)).status_code == 200
    assert httpx.get(gw.url + "/v1/models", headers={"x-api-key": MASTER}).status_code == 200


def test_virtual_keys_are_scoped_hashed_and_revocable(make_gateway, fake_openai) -> None:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER),
                         json={"name": "team-a", "models": ["openai/gpt-4o-mini"], "rpm": 10})
    assert created.status_code == 201, created.text
    info = created.json()
    secret, key_id = info["key"], info["id"]
    assert info["models"] == ["openai/gpt-4o-mini"] and info["rpm"] == 10
    # stored hashed: the store knows the hash, never the secret
    assert gw.gateway.keys.get_by_hash(hash_key(secret)) is not None
    listing = httpx.get(gw.url + "/admin/keys", headers=bearer(MASTER))
    assert secret not in listing.text and key_id in listing.text

    fake_openai.enqueue(Reply(text="ok"))
    assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer(secret)).status_code == 200
    denied = httpx.post(gw.url + "/v1/chat/completions", headers=bearer(secret),
                        json={**CHAT, "model": "anthropic/claude-sonnet-4-5"})
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_denied"
    persona = httpx.post(gw.url + "/v1/chat/completions", json=CHAT,
                         headers={**bearer(secret), "x-ep-persona": "architect"})
    assert persona.status_code == 403
    models = httpx.get(gw.url + "/v1/models", headers=bearer(secret)).json()["data"]
    assert all(m["id"] == "openai/gpt-4o-mini" for m in models)
    # a virtual key cannot manage keys
    assert httpx.get(gw.url + "/admin/keys", headers=bearer(secret)).status_code == 403

    assert httpx.delete(gw.url + f"/admin/keys/{key_id}", headers=bearer(MASTER)).status_code == 200
    assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer(secret)).status_code == 401
    assert httpx.delete(gw.url + f"/admin/keys/{key_id}", headers=bearer(MASTER)).status_code == 404


def test_admin_key_validation_is_a_400(make_gateway) -> None:
    gw = make_gateway({"master_key": MASTER})
    r = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER), json={"budget_period": "fortnight"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "budget_period"
    # Values the database cannot hold are refused up front (found by schemathesis as a 500).
    for field, value in [("rpm", 150932226585469053304832), ("tpm", 2**31), ("budget_usd", 1e300)]:
        r = httpx.post(gw.url + "/admin/keys", headers={**bearer(MASTER), "content-type": "application/json"},
                       content=f'{{"{field}": {value}}}')
        assert r.status_code == 400, (field, r.text)
        assert r.json()["error"]["param"] == field


def test_serve_refuses_public_bind_without_master_key(monkeypatch) -> None:
    monkeypatch.delenv("EP_MASTER_KEY", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "EP_MASTER_KEY" in result.output


def test_keys_cli_create_list_revoke(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EP_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    runner = CliRunner()
    created = runner.invoke(cli_app, ["keys", "create", "--name", "ci", "--models", "openai/gpt-4o-mini,gemini/x"])
    assert created.exit_code == 0, created.output
    import json

    info = json.loads(created.output)
    assert info["models"] == ["openai/gpt-4o-mini", "gemini/x"] and info["key"]
    listed = runner.invoke(cli_app, ["keys", "list"])
    assert info["id"] in listed.output and info["key"] not in listed.output
    assert runner.invoke(cli_app, ["keys", "revoke", info["id"]]).exit_code == 0
    assert runner.invoke(cli_app, ["keys", "revoke", info["id"]]).exit_code == 1
