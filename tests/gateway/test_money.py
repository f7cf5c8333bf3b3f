"""Money through the gateway: ledger rows per request id, cost header, 402/429, streams, ``/costs``."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from execution_platform.cli import app as cli_app
from execution_platform.config.file import parse_config
from tests.fakes.script import Fault, Reply

from .conftest import MASTER

# $0.001 per token in and out: the fake's default answer (12 in, 7 out) costs exactly $0.019.
CONFIG = """
pricing:
  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}
  openai/text-embedding-3-small: {input_per_mtok: 1000, output_per_mtok: 0}
personas:
  coder:
    targets: [openai/gpt-4o-mini]
    budget: {usd: 0.05, period: day}
teams:
  research: {budget: {usd: 1.0, period: month}, limits: {rpm: 2}}
"""
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **extra}


def rows(gw: Any) -> list[dict[str, Any]]:
    return gw.gateway.client.meter.ledger.rows_sync()


def new_key(gw: Any, **fields: Any) -> tuple[str, str]:
    r = httpx.post(gw.url + "/admin/keys", headers=bearer(MASTER), json=fields)
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["id"]


@pytest.fixture
def gw(make_gateway: Any) -> Any:
    return make_gateway({"master_key": MASTER}, config=parse_config(CONFIG))


def chat(gw: Any, key: str, *, model: str = MODEL, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers=bearer(key, **(headers or {})),
                      json={"model": model, "messages": HI, "max_tokens": 10, **body}, timeout=10)


def test_answer_has_cost_header_and_a_ledger_row_under_its_request_id(gw: Any, fake_openai: Any) -> None:
    key, key_id = new_key(gw, name="ci", team="platform")
    r = chat(gw, key, headers={"x-ep-run-id": "run-7"})
    assert r.status_code == 200, r.text
    assert float(r.headers["x-ep-cost-usd"]) == pytest.approx(0.019)
    [row] = rows(gw)
    assert row["request_id"] == r.headers["x-ep-request-id"]
    assert (row["key_id"], row["team"], row["run_id"], row["status"], row["attempt"]) == (
        key_id, "platform", "run-7", "ok", 1)
    assert (row["input_tokens"], row["output_tokens"]) == (12, 7) and row["cost_usd"] == pytest.approx(0.019)


def test_retried_request_has_one_row_per_attempt(gw: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Fault(kind="status", status=500), Reply())
    r = chat(gw, MASTER)
    assert r.status_code == 200 and r.headers["x-ep-attempts"] == "2"
    first, second = rows(gw)
    assert first["request_id"] == second["request_id"] == r.headers["x-ep-request-id"]
    assert (first["attempt"], first["status"], first["cost_usd"]) == (1, "error", 0.0)
    assert (second["attempt"], second["status"]) == (2, "ok")


def test_key_budget_402_in_both_shapes_and_no_upstream_call(gw: Any, fake_openai: Any) -> None:
    key, _ = new_key(gw, budget_usd=0.05, budget_period="total")
    assert chat(gw, key).status_code == 200
    assert chat(gw, key).status_code == 200  # 0.038 spent; the next may cost up to 0.020 > 0.012 left
    calls = len(fake_openai.requests)
    refused = chat(gw, key)
    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "budget_exceeded"
    anthropic = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": key},
                           json={"model": MODEL, "max_tokens": 10, "messages": HI})
    assert anthropic.status_code == 402
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "budget_exceeded"
    assert len(fake_openai.requests) == calls  # nothing reached the upstream
    assert len(rows(gw)) == 2


def test_persona_budget_applies_to_every_key(gw: Any, fake_openai: Any) -> None:
    a, _ = new_key(gw)
    b, _ = new_key(gw)
    assert chat(gw, a, model="persona:coder").status_code == 200
    assert chat(gw, b, model="persona:coder").status_code == 200
    assert chat(gw, a, model="persona:coder").status_code == 402  # $0.05 a day for the persona
    assert chat(gw, a).status_code == 200  # the same key outside the persona is not limited
    assert [r["persona"] for r in rows(gw)] == ["coder", "coder", None]


def test_key_rpm_429_with_retry_after_and_ratelimit_headers(gw: Any, fake_openai: Any) -> None:
    key, _ = new_key(gw, rpm=2, tpm=100_000)
    first = chat(gw, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert chat(gw, key).status_code == 200
    limited = chat(gw, key)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.headers["x-ratelimit-reset-requests"].endswith("s")
    assert len(fake_openai.requests) == 2


def test_a_streamed_answer_carries_the_ratelimit_headers_in_its_head(gw: Any, fake_openai: Any) -> None:
    key, _ = new_key(gw, rpm=2)
    body = {"model": MODEL, "messages": HI, "max_tokens": 10, "stream": True}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=bearer(key), json=body, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-requests"] == "2"
        assert r.headers["x-ratelimit-remaining-requests"] == "1"
        assert "data: [DONE]" in r.read().decode()


def test_a_reloaded_configuration_is_metered_by_the_same_meter(gw: Any, fake_openai: Any, tmp_path: Any) -> None:
    from execution_platform.gateway.reload import reload_config

    meter = gw.gateway.client.meter
    path = tmp_path / "ep.yaml"
    path.write_text(CONFIG.replace("usd: 0.05, period: day", "usd: 0.01, period: day"))
    assert reload_config(gw.gateway, path)
    key, _ = new_key(gw)
    assert chat(gw, key, model="persona:coder").status_code == 402  # the new, smaller persona budget
    assert chat(gw, key).status_code == 200
    assert gw.gateway.client.meter is meter and [r["cost_usd"] for r in rows(gw)] == [pytest.approx(0.019)]


def test_budget_refusal_gives_the_key_rpm_slot_back(gw: Any, fake_openai: Any) -> None:
    key, _ = new_key(gw, rpm=3)
    assert chat(gw, key, model="persona:coder").status_code == 200
    assert chat(gw, key, model="persona:coder").status_code == 200
    assert chat(gw, key, model="persona:coder").status_code == 402  # the persona's $0.05; no slot used
    assert chat(gw, key).status_code == 200  # the key's 3rd request of 3
    assert chat(gw, key).status_code == 429
    assert len(fake_openai.requests) == 3


def test_retries_count_once_against_the_team_rpm(gw: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Fault(kind="status", status=503), Reply(), Fault(kind="status", status=503), Reply())
    team = {"x-ep-team": "research"}
    assert chat(gw, MASTER, headers=team).status_code == 200
    assert chat(gw, MASTER, headers=team).status_code == 200
    assert len(fake_openai.requests) == 4  # two requests, four upstream attempts, rpm 2 not exhausted early
    assert chat(gw, MASTER, headers=team).status_code == 429
    assert {r["team"] for r in rows(gw)} == {"research"}


def _sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line.startswith("data: ")]


def test_streamed_call_row_has_final_usage_and_cost(gw: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Reply(text="streamed answer", input_tokens=40, output_tokens=25, chunks=5))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=bearer(MASTER),
                      json={"model": MODEL, "messages": HI, "stream": True}) as r:
        assert r.status_code == 200 and "x-ep-cost-usd" not in r.headers
        lines = _sse_lines(r)
        request_id = r.headers["x-ep-request-id"]
    assert lines[-1] == "data: [DONE]"
    [row] = rows(gw)
    assert (row["request_id"], row["status"]) == (request_id, "ok")
    assert (row["input_tokens"], row["output_tokens"]) == (40, 25)
    assert row["cost_usd"] == pytest.approx(0.065)
    assert row["ttft_ms"] is not None


def test_client_disconnect_mid_stream_leaves_a_cancelled_row(gw: Any, fake_openai: Any) -> None:
    text = "word " * 40
    fake_openai.enqueue(Fault(kind="stall", after_chunks=5, delay=30, then=Reply(text=text, chunks=40,
                                                                                 output_tokens=400)))
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=bearer(MASTER),
                      json={"model": MODEL, "messages": HI, "stream": True}) as r:
        seen = 0
        for line in r.iter_lines():
            seen += '"content":"word' in line.replace(" ", "")
            if seen == 5:
                break  # leaving the block closes the connection mid-stream
        request_id = r.headers["x-ep-request-id"]
    deadline = time.monotonic() + 5
    while not rows(gw) and time.monotonic() < deadline:
        time.sleep(0.02)
    [row] = rows(gw)
    assert (row["request_id"], row["status"], row["error_type"]) == (request_id, "cancelled", "cancelled")
    assert 0 < row["output_tokens"] < 400  # tokens so far, not the (never sent) final usage
    assert row["input_tokens"] > 0 and row["cost_usd"] == pytest.approx(
        (row["input_tokens"] + row["output_tokens"]) / 1000)


def test_costs_route_groups_filters_csv_and_scopes_virtual_keys(gw: Any, fake_openai: Any, monkeypatch) -> None:
    key, key_id = new_key(gw, team="research")
    assert chat(gw, key).status_code == 200
    assert chat(gw, MASTER, model="persona:coder").status_code == 200
    fake_openai.enqueue(Fault(kind="status", status=400))
    assert chat(gw, MASTER).status_code == 400
    everything = httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"by": "persona"}).json()
    assert everything["requests"] == 3 and everything["total_usd"] == pytest.approx(0.038)
    assert {g["group"]: g["requests"] for g in everything["groups"]} == {None: 2, "coder": 1}
    assert set(everything["groups"][0]) >= {"group", "cost_usd", "requests", "input_tokens", "output_tokens"}
    errors = httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"status": "error"}).json()
    assert (errors["requests"], errors["total_usd"]) == (1, 0.0)
    by_team = httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"by": "team", "format": "csv"})
    assert by_team.headers["content-type"].startswith("text/csv")
    assert by_team.text.splitlines()[0].startswith("group,cost_usd,requests,input_tokens,output_tokens")
    assert "research,0.019,1,12,7" in by_team.text
    mine = httpx.get(gw.url + "/costs", headers=bearer(key), params={"by": "key"}).json()
    assert [(g["group"], g["requests"]) for g in mine["groups"]] == [(key_id, 1)]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert httpx.get(gw.url + "/costs", headers=bearer(MASTER),
                     params={"since": today, "until": today}).json()["requests"] == 3
    assert httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"since": "2999-01-01"}).json()["requests"] == 0
    assert httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"by": "colour"}).status_code == 400
    assert httpx.get(gw.url + "/costs", headers=bearer(MASTER), params={"since": "soon"}).status_code == 400
    assert httpx.get(gw.url + "/costs").status_code == 401
    assert "/costs" in httpx.get(gw.url + "/openapi.json", headers=bearer(MASTER)).json()["paths"]
    # ep costs reads the same ledger
    monkeypatch.setenv("EP_DATABASE_URL", gw.gateway.settings.database_url)
    out = CliRunner().invoke(cli_app, ["costs", "--by", "persona", "--format", "json"])
    assert out.exit_code == 0, out.output
    import json

    assert json.loads(out.output)["total_usd"] == pytest.approx(0.038)
    table = CliRunner().invoke(cli_app, ["costs", "--by", "team"])
    assert table.exit_code == 0 and "research" in table.output and "$0.038000" in table.output


def embed(gw: Any, key: str, model: str, texts: list[str], **headers: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/embeddings", headers=bearer(key, **headers),
                      json={"model": model, "input": texts}, timeout=10)


def test_embeddings_get_a_ledger_row_with_input_tokens_and_cost(gw: Any, fake_openai: Any) -> None:
    key, key_id = new_key(gw, team="platform")
    r = embed(gw, key, "openai/text-embedding-3-small", ["a b", "c"], **{"x-ep-run-id": "run-e"})
    assert r.status_code == 200, r.text
    assert float(r.headers["x-ep-cost-usd"]) == pytest.approx(0.003)  # 3 tokens at $1000 per million
    [row] = rows(gw)
    assert (row["request_id"], row["key_id"], row["team"], row["run_id"]) == (
        r.headers["x-ep-request-id"], key_id, "platform", "run-e")
    assert (row["provider"], row["model"], row["status"]) == ("openai", "text-embedding-3-small", "ok")
    assert (row["input_tokens"], row["output_tokens"]) == (3, 0) and row["cost_usd"] == pytest.approx(0.003)


def test_gemini_embeddings_are_estimated_and_priced_from_the_bundled_list(gw: Any, fake_gemini: Any) -> None:
    assert embed(gw, MASTER, "gemini/gemini-embedding-001", ["hello there", "general kenobi"]).status_code == 200
    assert embed(gw, MASTER, "gemini/text-embedding-004", ["no price known"]).status_code == 200
    known, unknown = rows(gw)
    assert known["input_tokens"] > 0  # the answer has no count: estimated from the texts
    assert known["cost_usd"] == pytest.approx(known["input_tokens"] * 0.15e-6)  # genai-prices: $0.15/M
    assert unknown["input_tokens"] > 0 and unknown["cost_usd"] == 0


def test_embeddings_over_the_key_budget_are_refused_before_the_upstream(gw: Any, fake_openai: Any) -> None:
    key, _ = new_key(gw, budget_usd=0.001, budget_period="total", rpm=1)
    calls = len(fake_openai.requests)
    for _ in range(2):  # the refusal does not use the key's one request a minute either
        refused = embed(gw, key, "openai/text-embedding-3-small", ["hello world foo"])
        assert refused.status_code == 402 and refused.json()["error"]["type"] == "budget_exceeded"
    assert len(fake_openai.requests) == calls and rows(gw) == []
