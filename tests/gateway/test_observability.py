"""Metrics taxonomy, ``x-ep-overhead-ms``, the per-request log line and session attribution."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from execution_platform.config.file import parse_config
from execution_platform.gateway.logs import JsonFormatter
from tests.fakes.script import Fault, Reply

from .conftest import MASTER

CONFIG = """
routing:
  retry: {max_attempts: 1, backoff_base: 0.01, backoff_max: 0.02, max_retry_after: 1}
  breaker: {failure_threshold: 100}
pricing:
  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}
personas:
  failover:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
  coder:
    targets: [openai/gpt-4o-mini]
    budget: {usd: 0.000001, period: day}
"""
MODEL = "openai/gpt-4o-mini"
SECRET_TEXT = "the-content-nobody-may-log-42"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(gw: Any, name: str, expected: float, **labels: str) -> dict[Any, float]:
    """Scrape until ``name`` reaches ``expected`` (a response can reach the client a moment before its
    request is recorded), then return everything."""
    deadline = time.monotonic() + 5
    while True:
        found = samples(httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {MASTER}"}).text)
        if value(found, name, **labels) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lbls), v in found.items() if n == name and set(labels.items()) <= set(lbls))


@pytest.fixture
def gw(make_gateway: Any) -> Any:
    return make_gateway({"master_key": MASTER}, config=parse_config(CONFIG))


def _post(gw: Any, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers={"authorization": f"Bearer {MASTER}", **headers}, timeout=10)


def _chat(gw: Any, *, stream: bool = False, model: str = MODEL, **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": SECRET_TEXT}], "max_tokens": 10}
    if stream:
        body["stream"] = True
    return _post(gw, "/v1/chat/completions", body, **headers)



def _lines_of(access_lines: io.StringIO, request_id: str) -> list[dict[str, Any]]:
    """The access-log lines of one request (written once the response is out: waits up to 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(text) for text in access_lines.getvalue().splitlines()]
        mine = [line for line in lines if line.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)

def test_bounded_load_gives_exact_counts_overhead_ttft_and_fault_domains(gw: Any, fake_openai: Any) -> None:
    fake_openai.default = Reply(text="one two three four", chunks=4)
    plain = [_chat(gw) for _ in range(5)]
    streams = [_chat(gw, stream=True) for _ in range(4)]
    anthropic = [_post(gw, "/v1/messages", {"model": MODEL, "max_tokens": 5,
                                           "messages": [{"role": "user", "content": "x"}]})]
    bad = [_post(gw, "/v1/chat/completions", {"model": MODEL, "messages": []}) for _ in range(3)]
    broke = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user",
                       "content": "x"}]}, headers={"authorization": "Bearer wrong-key-1234567890"})
    fake_openai.enqueue(Fault(kind="status", status=503), Fault(kind="status", status=503))
    upstream_down = _chat(gw)
    over_budget = _chat(gw, model="persona:coder")
    assert {r.status_code for r in plain + streams + anthropic} == {200}
    assert [r.status_code for r in bad] == [400] * 3
    assert (broke.status_code, upstream_down.status_code, over_budget.status_code) == (401, 502, 402)

    for r in plain + streams + anthropic + bad + [upstream_down, over_budget]:
        overhead = float(r.headers["x-ep-overhead-ms"])  # on every model-call response, errors too
        assert 0 <= overhead < 5000
    route = "/v1/chat/completions"
    found = scrape(gw, "ep_gateway_requests_total", 9 + 3 + 2, route=route)

    assert value(found, "ep_gateway_requests_total", route=route, status="200", surface="openai") == 9
    assert value(found, "ep_gateway_requests_total", route="/v1/messages", status="200", surface="anthropic") == 1
    assert value(found, "ep_gateway_requests_total", route=route, status="400") == 3
    # every response on a model-call route is in the overhead histogram, refusals included
    assert value(found, "ep_gateway_overhead_seconds_count", route=route) == 9 + 3 + 1 + 2
    assert value(found, "ep_gateway_time_to_first_token_seconds_count", provider="openai") == 4
    assert value(found, "ep_gateway_inter_token_seconds_count", provider="openai") == 4
    assert value(found, "ep_gateway_errors_total", domain="caller", type="invalid_request_error") == 3
    assert value(found, "ep_gateway_errors_total", domain="caller", type="authentication_error") == 1
    assert value(found, "ep_gateway_errors_total", domain="provider") == 1
    assert value(found, "ep_gateway_errors_total", domain="policy", type="budget_exceeded") == 1
    assert value(found, "ep_gateway_errors_total") == 6
    assert value(found, "ep_gateway_tokens_total", provider="openai", kind="input") == 12 * 10
    assert value(found, "ep_gateway_cost_usd_total", provider="openai") == pytest.approx(10 * 0.019)
    assert value(found, "ep_gateway_upstream_attempts_total", provider="openai", status="ok") == 10
    assert not any("key" in dict(labels) or "run" in dict(labels) for _, labels in found)


def test_failover_counts_a_fallback_and_the_persona(gw: Any, fake_openai: Any, fake_anthropic: Any) -> None:
    fake_openai.enqueue(Fault(kind="status", status=503))
    r = _chat(gw, model="persona:failover")
    assert r.status_code == 200 and r.headers["x-ep-attempts"] == "2"
    found = scrape(gw, "ep_gateway_requests_total", 1, route="/v1/chat/completions")
    assert value(found, "ep_gateway_fallbacks_total", provider="anthropic") == 1
    assert value(found, "ep_gateway_upstream_attempts_total", provider="openai", status="error") == 1
    assert value(found, "ep_gateway_tokens_total", provider="anthropic", persona="failover", kind="input") > 0
    assert value(found, "ep_gateway_breaker_state", target="openai/gpt-4o-mini") == 0
    assert value(found, "ep_gateway_budget_remaining_usd", budget="persona:coder") == pytest.approx(0.000001)


def test_overhead_header_excludes_the_upstream_wait(gw: Any, fake_openai: Any) -> None:
    # Relative to what the client waited, never an absolute bound a busy machine could break (a slow disk
    # commit is the gateway's own time and may be large): the 600 ms spent upstream are not ours.
    for stream in (False, True):
        fake_openai.enqueue(Fault(kind="slow_first_byte", delay=0.6, then=Reply()))
        r = _chat(gw, stream=stream)
        assert r.status_code == 200
        waited_ms = r.elapsed.total_seconds() * 1000
        assert waited_ms >= 600
        assert float(r.headers["x-ep-overhead-ms"]) <= waited_ms - 550


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("execution_platform.access")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_one_json_line_per_request_with_ids_and_numbers_but_no_content_or_secret(
    gw: Any, fake_openai: Any, access_lines: io.StringIO
) -> None:
    key = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                     json={"name": "ci", "team": "platform"}).json()
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=10,
                   headers={"authorization": f"Bearer {key['key']}", "x-ep-run-id": "run-9",
                            "x-ep-session-id": "sess-1",
                            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                   json={"model": MODEL, "messages": [{"role": "user", "content": SECRET_TEXT}]})
    assert r.status_code == 200
    mine = _lines_of(access_lines, r.headers["x-ep-request-id"])
    assert len(mine) == 1
    line = mine[0]
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert (line["route"], line["status"], line["provider"], line["model"]) == (
        "/v1/chat/completions", 200, "openai", "gpt-4o-mini")
    assert (line["key_id"], line["team"], line["run_id"], line["session_id"]) == (key["id"], "platform", "run-9",
                                                                                  "sess-1")
    assert (line["input_tokens"], line["output_tokens"], line["cost_usd"]) == (12, 7, pytest.approx(0.019))
    assert line["latency_ms"] >= line["overhead_ms"] >= 0
    text = access_lines.getvalue()
    assert SECRET_TEXT not in text and key["key"] not in text and MASTER not in text
    assert "Hello from the fake upstream" not in text


def test_a_failed_over_request_logs_one_line_naming_the_serving_attempt(
    gw: Any, fake_openai: Any, fake_anthropic: Any, access_lines: io.StringIO
) -> None:
    fake_openai.enqueue(Fault(kind="status", status=503))
    r = _chat(gw, model="persona:failover")
    assert r.status_code == 200 and r.headers["x-ep-attempts"] == "2"
    mine = _lines_of(access_lines, r.headers["x-ep-request-id"])
    assert len(mine) == 1
    line = mine[0]
    assert (line["attempts"], line["provider"], line["persona"], line["status"]) == (2, "anthropic", "failover", 200)
    assert line["input_tokens"] > 0 and line["output_tokens"] > 0  # the failed attempt added none
    assert line["cost_usd"] == pytest.approx(float(r.headers.get("x-ep-cost-usd", "0")))


def test_sessions_from_our_header_and_from_claude_code_and_codex(gw: Any, fake_openai: Any) -> None:
    assert _chat(gw, **{"x-ep-session-id": "ours"}).status_code == 200
    assert _chat(gw, **{"x-ep-session-id": "ours"}).status_code == 200
    assert _chat(gw, **{"x-claude-code-session-id": "cc-1"}).status_code == 200
    assert _chat(gw, session_id="codex-1").status_code == 200
    assert _chat(gw).status_code == 200  # no session at all
    assert _chat(gw, **{"x-ep-session-id": "x" * 500}).status_code == 400  # too long: refused, never booked
    r = httpx.get(gw.url + "/costs?by=session", headers={"authorization": f"Bearer {MASTER}"})
    groups = {g["group"]: g["requests"] for g in r.json()["groups"]}
    assert groups == {"ours": 2, "cc-1": 1, "codex-1": 1, None: 1}
    rows = gw.gateway.client.meter.ledger.rows_sync()
    assert sorted(filter(None, (row["session_id"] for row in rows))) == ["cc-1", "codex-1", "ours", "ours"]


def test_ep_costs_by_session(tmp_path: Any, monkeypatch: Any) -> None:
    import asyncio

    from execution_platform.cli import app as cli_app
    from execution_platform.money.ledger import Ledger, LedgerRow
    from execution_platform.storage import create_engine_from_url, migrate

    url = f"sqlite:///{tmp_path / 'ep.db'}"
    engine = create_engine_from_url(url)
    migrate(engine)

    async def seed() -> None:
        async with Ledger(engine) as ledger:
            for i, session in enumerate(["a", "a", "b"]):
                await ledger.record(LedgerRow(request_id=f"r{i}", provider="openai", model="m", status="ok",
                                              cost_usd=1.0, session_id=session))

    asyncio.run(seed())
    engine.dispose()
    monkeypatch.setenv("EP_DATABASE_URL", url)
    result = CliRunner().invoke(cli_app, ["costs", "--by", "session", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {g["group"]: g["requests"] for g in json.loads(result.output)["groups"]} == {"a": 2, "b": 1}


def test_ep_serve_with_two_workers_one_scrape_sees_every_request(fake_openai: Any, tmp_path: Any) -> None:
    from tests.servers import ep_env, ep_serve

    env = ep_env(tmp_path, openai=fake_openai)
    for name in ("PROMETHEUS_MULTIPROC_DIR", "EP_LOG_FORMAT"):
        env.pop(name, None)
    sent = 24
    with ep_serve(tmp_path, env, "--workers", "2", "--log-format", "json") as gateway:
        url = gateway.url
        with httpx.Client(timeout=10) as client:  # new connections, so both workers take some
            for i in range(sent):
                r = httpx.post(url + "/v1/chat/completions", timeout=10, json={
                    "model": MODEL, "stream": i % 2 == 0, "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200
            for _ in range(3):  # whichever worker answers the scrape, it sees all of them
                text = client.get(url + "/metrics").text
                found = samples(text)
                assert value(found, "ep_gateway_requests_total", route="/v1/chat/completions") == sent
                assert value(found, "ep_gateway_overhead_seconds_count", route="/v1/chat/completions") == sent
                assert value(found, "ep_gateway_time_to_first_token_seconds_count") == sent // 2
    lines = [json.loads(line) for line in gateway.output().splitlines() if line.startswith("{")]
    served = [line for line in lines if line.get("route") == "/v1/chat/completions"]
    assert len(served) == sent and {line["status"] for line in served} == {200}
    assert len({line["request_id"] for line in served}) == sent


def test_ep_keys_list_is_a_table_and_json_on_request(tmp_path: Any, monkeypatch: Any) -> None:
    from execution_platform.cli import app as cli_app

    monkeypatch.setenv("EP_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    monkeypatch.setenv("COLUMNS", "120")
    runner = CliRunner()
    created = json.loads(runner.invoke(cli_app, ["keys", "create", "--name", "ci-bot", "--budget-usd", "5",
                                                 "--budget-period", "day"]).output)
    table = runner.invoke(cli_app, ["keys", "list"])
    assert table.exit_code == 0, table.output
    assert "Virtual keys" in table.output and created["id"] in table.output and "ci-bot" in table.output
    assert "$5.00 / day" in table.output and created["key"] not in table.output
    lines = runner.invoke(cli_app, ["keys", "list", "--format", "json"]).output.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [created["id"]]


def test_embeddings_carry_the_overhead_header_and_the_session(gw: Any, fake_openai: Any) -> None:
    r = _post(gw, "/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "hello"},
              **{"x-ep-session-id": "emb-1"})
    assert r.status_code == 200, r.text
    assert 0 <= float(r.headers["x-ep-overhead-ms"]) < 5000
    rows = gw.gateway.client.meter.ledger.rows_sync()
    assert [row["session_id"] for row in rows] == ["emb-1"]


def test_a_stream_that_breaks_after_its_headers_counts_as_a_provider_error(gw: Any, fake_openai: Any) -> None:
    fake_openai.enqueue(Fault(kind="disconnect", after_chunks=2, then=Reply(text="a b c d e f", chunks=6)))
    r = _chat(gw, stream=True)
    assert r.status_code == 200 and "error" in r.text  # the failure arrives inside the stream
    found = scrape(gw, "ep_gateway_requests_total", 1, route="/v1/chat/completions")
    errors = {labels: v for (name, labels), v in found.items() if name == "ep_gateway_errors_total" and v}
    assert list(errors.values()) == [1.0]
    assert dict(next(iter(errors)))["domain"] == "provider"


def test_log_format_defaults_to_json_off_a_terminal_and_text_renders_the_fields(monkeypatch: Any) -> None:
    import sys

    from execution_platform.gateway import logs

    monkeypatch.delenv(logs.ENV, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert logs.default_format() == "json"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert logs.default_format() == "text"
    record = logging.LogRecord("execution_platform.access", logging.INFO, __file__, 1, "request", None, None)
    record.ep = {"request_id": "abc", "status": 200, "provider": None}
    text = logs.TextFormatter().format(record)
    assert text.endswith("request request_id=abc status=200")
    assert json.loads(logs.JsonFormatter().format(record))["request_id"] == "abc"
    with pytest.raises(ValueError):
        logs.configure("xml")


def test_attempt_metrics_add_up_over_requests_and_export_only_what_counted() -> None:
    """The per-attempt series, kept between requests, count every attempt; a token kind or cost that
    never counted is not exported at all (not even at 0)."""
    from prometheus_client import generate_latest

    from execution_platform.gateway.metrics import Metrics
    from execution_platform.gateway.observe import Observer
    from execution_platform.money.ledger import LedgerRow

    observer = Observer(Metrics())
    for persona in ("coder", "coder", None):
        rows: list[Any] = []
        hook = observer.attempt_hook(rows, [])
        hook(LedgerRow(request_id="r", provider="openai", model="m", status="error", persona=persona,
                       latency_ms=5.0), 0.0)
        hook(LedgerRow(request_id="r", provider="openai", model="m", status="ok", persona=persona,
                       input_tokens=10, output_tokens=4, cost_usd=0.5, latency_ms=20.0), 0.0)
        assert len(rows) == 2
    found = samples(generate_latest(observer.metrics.registry).decode())
    assert value(found, "ep_gateway_upstream_attempts_total", status="ok") == 3
    assert value(found, "ep_gateway_upstream_attempts_total", status="error") == 3
    assert value(found, "ep_gateway_retries_total", provider="openai", model="m") == 3
    assert value(found, "ep_gateway_upstream_seconds_count", provider="openai") == 6
    assert value(found, "ep_gateway_tokens_total", persona="coder", kind="input") == 20
    assert value(found, "ep_gateway_tokens_total", persona="", kind="output") == 4
    assert value(found, "ep_gateway_cost_usd_total", persona="coder") == pytest.approx(1.0)
    kinds = {dict(labels)["kind"] for name, labels in found if name == "ep_gateway_tokens_total"}
    assert kinds == {"input", "output"}
