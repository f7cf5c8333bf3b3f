"""Request metadata is bounded (length, printable ASCII) and a persona named in it is held to the key's scope."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import Reply
from tests.gateway.conftest import make_gateway  # noqa: F401  (fixture)

from ._edge_helpers import ANTHROPIC_CHAT, CHAT, MASTER, bearer, new_key, sql_keys

HUGE = "r" * 200_000


def _rows(gw: Any, count: int) -> list[dict[str, Any]]:
    ledger = gw.gateway.client.meter.ledger
    deadline = time.monotonic() + 10
    while len(found := ledger.rows_sync()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("header", ["X-EP-Run-Id", "X-EP-Team", "X-EP-Session-Id", "X-EP-Persona"])
def test_huge_metadata_header_is_a_400_on_every_surface_and_never_reaches_the_ledger(
    make_gateway, fake_openai, header: str  # noqa: F811
) -> None:
    gw = make_gateway()
    for path, body in (("/v1/chat/completions", CHAT), ("/chat", CHAT), ("/v1/messages", ANTHROPIC_CHAT)):
        r = httpx.post(gw.url + path, json=body, headers={header: HUGE})
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        message = r.json()["error"]["message"]
        assert header in message and HUGE[:1000] not in r.text
        if path == "/v1/messages":
            assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert fake_openai.requests == []
    fake_openai.enqueue(Reply(text="ok"))
    assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers={"X-EP-Run-Id": "run-1"}).status_code == 200
    rows = _rows(gw, 1)
    assert [row["run_id"] for row in rows] == ["run-1"]


@pytest.mark.parametrize("value", ["tab\there", "caf\u00e9", "x" * 129])
def test_metadata_outside_printable_ascii_or_128_chars_is_refused(make_gateway, value: str) -> None:  # noqa: F811
    gw = make_gateway()
    r = httpx.post(gw.url + "/chat", json={**CHAT, "metadata": {"run_id": value}})
    assert r.status_code == 400 and "metadata.run_id" in r.json()["error"]["message"]
    r = httpx.post(gw.url + "/chat", json=CHAT, headers={"X-EP-Team": value.encode("utf-8")})
    assert r.status_code == 400


def test_native_metadata_persona_is_held_to_the_key_scope(make_gateway, fake_openai, tmp_path: Path) -> None:  # noqa: F811
    keys, db = sql_keys(tmp_path)
    gw = make_gateway({"master_key": MASTER, "database_url": db}, key_store=keys)
    limited = new_key(gw.url, models=["openai/gpt-4o-mini"])
    r = httpx.post(gw.url + "/chat", headers=bearer(limited), json={**CHAT, "metadata": {"persona": "architect"}})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "persona_not_allowed"
    assert fake_openai.requests == []
    r = httpx.post(gw.url + "/v1/chat/completions", headers={**bearer(limited), "X-EP-Persona": "architect"}, json=CHAT)
    assert r.status_code == 403
    allowed = new_key(gw.url, models=["openai/gpt-4o-mini"], personas=["architect"])
    fake_openai.enqueue(Reply(text="ok"))
    r = httpx.post(gw.url + "/chat", headers=bearer(allowed), json={**CHAT, "metadata": {"persona": "architect"}})
    assert r.status_code == 200, r.text


def test_a_key_with_a_team_keeps_it_whatever_the_header_says(make_gateway, fake_openai, tmp_path: Path) -> None:  # noqa: F811
    keys, db = sql_keys(tmp_path)
    gw = make_gateway({"master_key": MASTER, "database_url": db}, key_store=keys)
    key = new_key(gw.url, team="research")
    fake_openai.enqueue(Reply(text="ok"))
    r = httpx.post(gw.url + "/chat", headers={**bearer(key), "X-EP-Team": "finance"},
                   json={**CHAT, "metadata": {"team": "finance"}})
    assert r.status_code == 200
    assert [row["team"] for row in _rows(gw, 1)] == ["research"]
