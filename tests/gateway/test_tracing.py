"""OpenTelemetry traces, received by a real OTLP/HTTP endpoint that decodes the protobuf.

One request that fails over from a 503 target to a healthy one gives a server span (continuing the
caller's ``traceparent``) and two sibling attempt spans with the GenAI semantic-convention attributes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from execution_platform import tracing
from execution_platform.config.file import parse_config
from tests.fakes.script import Fault, Reply
from tests.otlp_receiver import Receiver

CONFIG = """
routing:
  retry: {max_attempts: 1, backoff_base: 0.01, backoff_max: 0.02, max_retry_after: 1}
  breaker: {failure_threshold: 100}
personas:
  failover:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
"""
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
CONTENT = "a message that must not reach a span by default"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    got = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", got.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    tracing.reset()
    yield got
    tracing.reset()
    got.close()


def test_failover_gives_a_server_span_and_two_sibling_attempt_spans(
    receiver: Receiver, make_gateway: Any, fake_openai: Any, fake_anthropic: Any
) -> None:
    gw = make_gateway(config=parse_config(CONFIG))
    fake_openai.enqueue(Fault(kind="status", status=503))
    fake_anthropic.enqueue(Reply(text="served after failover", input_tokens=21, output_tokens=4))
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=10,
                   headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "x-ep-session-id": "s-42",
                            "x-ep-run-id": "run-1"},
                   json={"model": "persona:failover", "max_tokens": 50,
                         "messages": [{"role": "user", "content": CONTENT}]})
    assert r.status_code == 200 and r.headers["x-ep-attempts"] == "2"
    deadline = time.monotonic() + 10
    while len(receiver.spans) < 3 and time.monotonic() < deadline:
        tracing.flush()
        time.sleep(0.05)
    spans = [s for s in receiver.spans if s["trace_id"] == TRACE_ID]
    servers = [s for s in spans if s["kind"] == 2]  # SPAN_KIND_SERVER
    attempts = sorted((s for s in spans if s["kind"] == 3), key=lambda s: s["start"])  # SPAN_KIND_CLIENT
    assert len(servers) == 1 and len(attempts) == 2
    server = servers[0]
    assert server["parent"] == PARENT_ID  # the caller's trace is continued
    assert server["name"] == "POST /v1/chat/completions"
    sa = server["attrs"]
    assert sa["gen_ai.operation.name"] == "chat"
    assert sa["gen_ai.request.model"] == "persona:failover"
    assert sa["gen_ai.request.max_tokens"] == 50
    assert sa["gen_ai.provider.name"] == "anthropic"
    assert sa["gen_ai.usage.input_tokens"] == 21 and sa["gen_ai.usage.output_tokens"] == 4
    assert sa["gen_ai.response.finish_reasons"] == ["stop"]
    assert sa["gen_ai.response.id"]
    assert (sa["ep.persona"], sa["ep.session_id"], sa["ep.run_id"], sa["ep.attempts"]) == ("failover", "s-42",
                                                                                           "run-1", 2)
    assert "ep.overhead_ms" in sa and "ep.cost_usd" in sa
    failed, served = attempts
    assert failed["parent"] == served["parent"] == server["span_id"]  # siblings under the server span
    assert failed["name"] == "chat gpt-4o-mini" and served["name"] == "chat claude-sonnet-4-5"
    assert failed["attrs"]["gen_ai.provider.name"] == "openai"
    assert failed["attrs"]["error.type"] == "upstream_error" and failed["status"] == 2  # STATUS_CODE_ERROR
    sv = served["attrs"]
    assert (sv["gen_ai.provider.name"], sv["gen_ai.request.model"]) == ("anthropic", "claude-sonnet-4-5")
    assert sv["gen_ai.response.model"] and sv["gen_ai.response.id"] == sa["gen_ai.response.id"]
    assert (sv["gen_ai.usage.input_tokens"], sv["gen_ai.usage.output_tokens"]) == (21, 4)
    assert sv["gen_ai.response.finish_reasons"] == ["stop"] and sv["gen_ai.request.max_tokens"] == 50
    assert server["start"] <= failed["start"] <= failed["end"] <= served["start"] <= served["end"] <= server["end"]
    assert all(CONTENT not in str(s["attrs"]) for s in spans)  # no message content unless enabled


def test_message_content_only_when_enabled(receiver: Receiver, make_gateway: Any, fake_openai: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    gw = make_gateway()
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=10,
                   json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": CONTENT}]})
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while not any(s["kind"] == 2 for s in receiver.spans) and time.monotonic() < deadline:
        tracing.flush()
        time.sleep(0.05)
    server = next(s for s in receiver.spans if s["kind"] == 2)
    assert CONTENT in server["attrs"]["gen_ai.input.messages"]


def test_tracing_off_creates_no_tracer_provider_or_exporter(make_gateway: Any, fake_openai: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "EP_OTEL"):
        monkeypatch.delenv(name, raising=False)
    tracing.reset()
    gw = make_gateway()
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=10,
                   json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    assert gw.gateway.observer.tracer is None
    assert tracing.provider() is None
