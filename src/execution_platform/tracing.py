"""OpenTelemetry tracing, off unless asked for, following the GenAI semantic conventions.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set or ``EP_OTEL=1``,
unless ``OTEL_SDK_DISABLED=true``. Spans go over OTLP/HTTP (protobuf); the exporter, the batch processor,
the sampler and the resource read the standard ``OTEL_*`` variables themselves.

The SDK is imported only when tracing is on, so ``import execution_platform`` stays fast and a gateway
without tracing creates no tracer provider or exporter at all (:func:`tracer` returns None and every
caller skips its span work). Message content goes on spans only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (or ``EP_OTEL_CAPTURE_CONTENT=1``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_provider: Any = None  # the SDK TracerProvider, once created
_tracer: Any = None
_decided = False

# ``gen_ai.provider.name`` well-known values for our providers.
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def enabled() -> bool:
    if _truthy("OTEL_SDK_DISABLED"):
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or _truthy("EP_OTEL"))


def capture_content() -> bool:
    return _truthy("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") or _truthy("EP_OTEL_CAPTURE_CONTENT")


def tracer() -> Any:
    """The process's tracer, created on first use when tracing is on; None when it is off."""
    global _provider, _tracer, _decided
    if _decided:
        return _tracer
    with _lock:
        if not _decided:
            if enabled():
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                from opentelemetry.sdk.resources import Resource
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor

                resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "execution-platform"})
                _provider = TracerProvider(resource=resource)
                _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
                _tracer = _provider.get_tracer("execution_platform")
            _decided = True
    return _tracer


def provider() -> Any:
    """The SDK tracer provider when tracing is on (None otherwise, and before first use)."""
    return _provider


def flush(timeout_ms: int = 5000) -> None:
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def reset() -> None:
    """Shut the provider down (flushing spans) and decide again on next use (tests, reconfiguration)."""
    global _provider, _tracer, _decided
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider = _tracer = None
        _decided = False


def extract(headers: Any) -> Any:
    """The remote parent from W3C ``traceparent``/``tracestate`` (or ``OTEL_PROPAGATORS``) headers."""
    from opentelemetry.propagate import extract as otel_extract

    return otel_extract(headers)


def parent(span: Any) -> Any:
    from opentelemetry.trace import set_span_in_context

    return set_span_in_context(span)


def kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return getattr(SpanKind, name)


def mark_error(span: Any, error_type: str, message: str | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))
