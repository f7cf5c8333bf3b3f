"""Prometheus collectors for the gateway (the taxonomy is documented in docs/observability.md).

One registry per app so several apps can coexist in a process (tests). With ``PROMETHEUS_MULTIPROC_DIR``
set (``ep serve --workers N`` sets it), every worker writes its values to that directory and a scrape
of any worker sums them all (:func:`exposition`).

Cardinality is bounded by construction: route labels are route templates, surfaces come from a fixed
set, provider/model/persona come from the configuration; key, run and session ids are never labels.
Label children are cached, because ``.labels()`` costs more than the increment itself and every model
call pays for these.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
MAX_CHILDREN = 4096  # beyond this, label sets are not cached (they still count)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Family:
    """A metric with its label children cached by label tuple."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self.children.get(labels)
        if child is None:
            child = self.metric.labels(*labels)
            if len(self.children) < MAX_CHILDREN:
                self.children[labels] = child
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name: str, doc: str, labels: list[str]) -> _Family:
            return _Family(Counter(name, doc, labels, registry=r))

        def histogram(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> _Family:
            return _Family(Histogram(name, doc, labels, registry=r, buckets=buckets))

        self.requests = counter("ep_gateway_requests", "HTTP requests served", ["route", "status", "surface"])
        self.latency = histogram("ep_gateway_request_seconds", "Time to the end of the response (streams included)",
                                 ["route"], LATENCY_BUCKETS)
        self.overhead = histogram(
            "ep_gateway_overhead_seconds",
            "Time the gateway added to a model call: to the response headers, minus the time spent waiting "
            "for upstreams (for streams: up to the first byte)", ["route"], OVERHEAD_BUCKETS)
        self.upstream = histogram("ep_gateway_upstream_seconds", "Duration of each upstream attempt",
                                  ["provider", "model"], LATENCY_BUCKETS)
        self.ttft = histogram("ep_gateway_time_to_first_token_seconds",
                              "Streams: from the request's arrival to the first content event",
                              ["provider", "model"], LATENCY_BUCKETS)
        self.inter_token = histogram("ep_gateway_inter_token_seconds",
                                     "Streams: mean gap between content events, one observation per stream",
                                     ["provider", "model"], TOKEN_GAP_BUCKETS)
        self.tokens = counter("ep_gateway_tokens", "Tokens by kind (input, output, cached_input, reasoning)",
                              ["provider", "model", "persona", "kind"])
        self.cost = counter("ep_gateway_cost_usd", "Spend of upstream attempts", ["provider", "model", "persona"])
        self.attempts = counter("ep_gateway_upstream_attempts", "Upstream attempts by outcome",
                                ["provider", "model", "status"])
        self.retries = counter("ep_gateway_retries", "Attempts that retried the same target", ["provider", "model"])
        self.fallbacks = counter("ep_gateway_fallbacks", "Attempts that moved to another target (the new one)",
                                 ["provider", "model"])
        self.errors = counter("ep_gateway_errors", "Failed requests by fault domain and error type",
                              ["domain", "type"])
        self.breaker_state = Gauge("ep_gateway_breaker_state", "Circuit breaker per target: 0 closed, "
                                   "1 half-open, 2 open (the worst worker wins)", ["target"], registry=r,
                                   multiprocess_mode="max")
        self.budget_remaining = Gauge("ep_gateway_budget_remaining_usd", "USD left in the current period of "
                                      "each configured budget", ["budget"], registry=r, multiprocess_mode="min")

    def observe(self, route: str, status: int, surface: str, seconds: float) -> None:
        self.requests(route, str(status), surface).inc()
        self.latency(route).observe(seconds)


def exposition(metrics: Metrics) -> bytes:
    """The text format: this app's registry, or every worker's values summed in multiprocess mode."""
    from prometheus_client import generate_latest

    if multiprocess_dir() is None:
        return generate_latest(metrics.registry)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


_GEMINI_METHODS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents", "get"}
)


def route_label(path: str) -> str:
    """A Gemini model path's label: one per API version and method, never per model (the routes match
    ``models/{anything}`` with one catch-all template); anything unrecognised is ``other``."""
    version, _, rest = path[1:].partition("/models/")
    if version in ("v1beta", "v1") and rest:
        method = rest.rpartition(":")[2] if ":" in rest else "get"
        if method in _GEMINI_METHODS:
            return f"/{version}/models/{{model}}:{method}"
    return "other"
