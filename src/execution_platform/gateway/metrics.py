"""Prometheus collectors for the gateway, on a registry per app so several apps can coexist."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Routes with a fixed label; anything else is "other" so label cardinality stays bounded.
KNOWN_ROUTES = frozenset(
    {
        "/health",
        "/capabilities",
        "/chat",
        "/v1/chat/completions",
        "/v1/models",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/tools",
        "/v1/tools/invoke",
        "/metrics",
        "/admin/keys",
    }
)


def route_label(path: str) -> str:
    if path in KNOWN_ROUTES:
        return path
    if path.startswith("/admin/keys/"):
        return "/admin/keys/{id}"
    version, _, rest = path[1:].partition("/models/")
    if version in ("v1beta", "v1") and rest:  # Gemini: one label per method, never per model
        method = rest.rpartition(":")[2] if ":" in rest else "get"
        if method in _GEMINI_METHODS:
            return f"/{version}/models/{{model}}:{method}"
    return "other"


_GEMINI_METHODS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents", "get"}
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ep_gateway_requests", "HTTP requests served", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ep_gateway_request_seconds",
            "Time to the end of the response (streams included)",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.model_calls = Counter(
            "ep_gateway_model_calls", "Model calls by provider and outcome", ["provider", "outcome"],
            registry=self.registry,
        )
        self.cost = Counter("ep_gateway_cost_usd", "Spend reported on served calls", ["provider"], registry=self.registry)
        self._children: dict[tuple[str, int], tuple[object, object]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        key = (path, status)
        pair = self._children.get(key)
        if pair is None:
            route = route_label(path)
            pair = (self.requests.labels(route, str(status)), self.latency.labels(route))
            if route != "other" or len(self._children) < 256:
                self._children[key] = pair
        pair[0].inc()  # type: ignore[attr-defined]
        pair[1].observe(seconds)  # type: ignore[attr-defined]
