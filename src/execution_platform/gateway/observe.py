"""What the gateway records about each request: metrics, the access log line and error attribution.

The middleware opens a request (start time), :func:`~.money.bind` attaches the request's
``CallContext`` (attribution, upstream timing, outcome) to the ASGI scope state, every upstream attempt
reports its settled ledger row through :meth:`Observer.attempt_hook`, and the middleware closes the
request with :meth:`Observer.finish`. Nothing here sees message content; the log line carries ids,
counts and timings only.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from ..errors import (
    BudgetExceededError,
    EPError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from .errors import surface_for
from .logs import JsonFormatter, sole_json_handler
from .metrics import BREAKER_STATES, MAX_CHILDREN, Metrics, route_label

if TYPE_CHECKING:
    from .state import Gateway

_ACCESS = "execution_platform.access"
ACCESS_MESSAGE = "request"
access_log = logging.getLogger(_ACCESS)

# Model-call routes served by exact path (the hot routes, see fastpath.HOT_PATHS, which Observer adds):
# labelled by their path, as FastAPI's route matching (which names other routes) is skipped for them.
MODEL_CALL_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/chat", "/v1/embeddings"})
_PROVIDER_ERRORS = (UpstreamServerError, UpstreamTimeoutError, UpstreamConnectionError, StreamInterruptedError,
                    OverloadedError)
_CALLER_TYPES = frozenset({"invalid_request_error", "context_length_exceeded", "unsupported_parameter",
                           "content_filtered", "authentication_error", "not_found_error", "capability_missing"})


def fault_domain(err: EPError) -> str:
    """Whose fault: ``caller`` (bad input, bad key), ``policy`` (our budgets, limits, scopes),
    ``provider`` (an upstream failed or refused) or ``gateway`` (our configuration or a bug)."""
    if isinstance(err, _PROVIDER_ERRORS):
        return "provider"
    if isinstance(err, RateLimitError):
        return "policy" if getattr(err, "before_upstream", False) or err.upstream_status is None else "provider"
    if isinstance(err, BudgetExceededError | PermissionDeniedError | PayloadTooLargeError):
        return "policy"
    if err.upstream_status is not None:
        return "provider"
    if err.type in _CALLER_TYPES or 400 <= err.status_code < 500:
        return "caller"
    return "gateway"


_PROVIDER_TYPES = frozenset({"upstream_error", "timeout_error", "connection_error", "stream_interrupted",
                             "overloaded_error", "circuit_open", "insufficient_quota"})


def domain_of_type(error_type: str) -> str:
    """The fault domain of an attempt's recorded error type (a stream that failed after its headers)."""
    if error_type in _PROVIDER_TYPES:
        return "provider"
    if error_type in _CALLER_TYPES:
        return "caller"
    if error_type in ("budget_exceeded", "rate_limit_error", "permission_denied", "request_too_large"):
        return "policy"
    return "gateway"


def note_error(scope: MutableMapping[str, Any], err: EPError) -> None:
    """Remember the error a request is answered with (for its metrics and log line)."""
    scope.setdefault("state", {})["error"] = err


def session_of(headers: Any) -> str | None:
    """``X-EP-Session-Id``, else the session ids Claude Code and Codex CLI send on every request."""
    for name in ("x-ep-session-id", "x-claude-code-session-id", "session_id", "conversation_id",
                 "x-codex-session-id"):
        value = headers.get(name)
        if value and len(value) <= 128 and value.isprintable() and value.isascii():
            return value
    return None


def _trace_id(scope: dict[str, Any]) -> str | None:
    state = scope.get("state", {})
    span = state.get("span")
    if span is not None:
        return format(span.get_span_context().trace_id, "032x")
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            parts = value.decode("latin-1").split("-")
            return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None
    return None


_record_fields: dict[str, Any] | None = None  # an access record's fields that no request changes
_log_start = vars(logging).get("_startTime")  # what a record's relativeCreated counts from


def access_record() -> logging.LogRecord:
    """A new access-log record, as ``LogRecord(...)`` would build it.

    Most of a record is the same for every request (logger, level, message, file and module names);
    only its time differs. So the fields are worked out once and each record is a copy of them with
    its own time, unless the record would also carry the thread or process (``logging.logThreads``
    and friends, which ``ep serve`` turns off), which the constructor then looks up as usual."""
    global _record_fields
    if logging.logThreads or logging.logProcesses or logging.logMultiprocessing or _log_start is None:
        return logging.LogRecord(_ACCESS, logging.INFO, __file__, 0, ACCESS_MESSAGE, None, None, "finish")
    fields = _record_fields
    if fields is None:
        fields = _record_fields = dict(
            vars(logging.LogRecord(_ACCESS, logging.INFO, __file__, 0, ACCESS_MESSAGE, None, None, "finish"))
        )
    record: logging.LogRecord = logging.LogRecord.__new__(logging.LogRecord)
    now = time.time()
    own = record.__dict__
    own.update(fields)
    own["created"] = now
    own["msecs"] = int((now - int(now)) * 1000) + 0.0  # as LogRecord computes it
    own["relativeCreated"] = (now - _log_start) * 1000
    return record


class _AttemptSeries:
    """The label children one (provider, model, persona, status) of upstream attempts counts in, found
    with one lookup per attempt instead of one per metric (the token and cost ones filled on first use)."""

    __slots__ = ("attempts", "cached_input", "cost", "input", "output", "persona", "reasoning", "upstream")

    def __init__(self, persona: str, attempts: Any, upstream: Any) -> None:
        self.persona = persona
        self.attempts = attempts
        self.upstream = upstream
        self.input: Any = None
        self.output: Any = None
        self.cached_input: Any = None
        self.reasoning: Any = None
        self.cost: Any = None


class Observer:
    """Per-app recorder; cheap on the hot path (cached label children, the log line built only when
    the access logger is enabled)."""

    def __init__(self, metrics: Metrics, tracer: Any = None) -> None:
        from .fastpath import HOT_PATHS

        self.metrics = metrics
        self.model_paths = MODEL_CALL_PATHS | HOT_PATHS
        self.tracer = tracer  # None: tracing off, no span work at all
        self.capture_content = False
        self._children: dict[tuple[str, int, bool], tuple[Any, Any]] = {}
        self._attempt_series: dict[tuple[str, str, str | None, str], _AttemptSeries] = {}
        # The latest model calls of this process (time, latency, overhead, fault domain): the dashboard's
        # live view, without a database read.
        self.recent: deque[tuple[float, float, float | None, str | None]] = deque(maxlen=4096)
        self.started = time.time()
        if tracer is not None:
            from .. import tracing

            self.capture_content = tracing.capture_content()

    # -- per attempt -------------------------------------------------------------------------------
    def attempt_hook(self, rows: list[Any], starts: list[float]) -> Callable[[Any, float], None]:
        """A callback for one request's attempts: metrics per attempt, and each settled row appended to
        ``rows`` with its start in ``starts`` (the previous row tells a retry of the same target from a
        fallback to another; spans are made from both when the request ends)."""
        m = self.metrics
        found = self._attempt_series
        series_of = self._series

        def on_attempt(row: Any, started: float) -> None:
            starts.append(started)
            provider, model = row.provider, row.model
            if rows:
                last = rows[-1]
                same = last.provider == provider and last.model == model
                (m.retries if same else m.fallbacks)(provider, model).inc()
            rows.append(row)
            series = found.get((provider, model, row.persona, row.status))
            if series is None:
                series = series_of(provider, model, row.persona, row.status)
            series.attempts.inc()
            if row.latency_ms is not None:
                series.upstream.observe(row.latency_ms / 1000)
            # Children made on first use only: a child made is a series exported, at 0 until it counts.
            if row.input_tokens:
                if series.input is None:
                    series.input = m.tokens(provider, model, series.persona, "input")
                series.input.inc(row.input_tokens)
            if row.output_tokens:
                if series.output is None:
                    series.output = m.tokens(provider, model, series.persona, "output")
                series.output.inc(row.output_tokens)
            if row.cached_input_tokens:
                if series.cached_input is None:
                    series.cached_input = m.tokens(provider, model, series.persona, "cached_input")
                series.cached_input.inc(row.cached_input_tokens)
            if row.reasoning_tokens:
                if series.reasoning is None:
                    series.reasoning = m.tokens(provider, model, series.persona, "reasoning")
                series.reasoning.inc(row.reasoning_tokens)
            if row.cost_usd:
                if series.cost is None:
                    series.cost = m.cost(provider, model, series.persona)
                series.cost.inc(row.cost_usd)

        return on_attempt

    def _series(self, provider: str, model: str, persona: str | None, status: str) -> _AttemptSeries:
        """The children an attempt of this target, persona and outcome counts in, kept for the next one
        (bounded like the families' own caches)."""
        m = self.metrics
        series = _AttemptSeries(persona or "", m.attempts(provider, model, status), m.upstream(provider, model))
        if len(self._attempt_series) < MAX_CHILDREN:
            self._attempt_series[(provider, model, persona, status)] = series
        return series

    # -- per request -------------------------------------------------------------------------------
    def _request_children(self, route: str, status: int, model_call: bool) -> tuple[Any, Any]:
        """The label children every request of this route, status and kind counts in (what
        :meth:`Metrics.observe` looks up), found once per combination: routes are templates and
        statuses few, so the combinations are bounded (and capped like the families')."""
        surface = ("native" if route == "/chat" else surface_for(route)) if model_call else "none"
        m = self.metrics
        children = (m.requests(route, str(status), surface), m.latency(route))
        if len(self._children) < MAX_CHILDREN:
            self._children[(route, status, model_call)] = children
        return children

    def route(self, scope: dict[str, Any]) -> str:
        """The route template (bounded cardinality): hot paths as-is, others from the matched route."""
        path: str = scope["path"]
        if path in self.model_paths:
            return path
        matched = scope.get("route")
        template = getattr(matched, "path", None)
        if isinstance(template, str) and template.endswith("{target:gemini_target}"):
            return route_label(path)  # one catch-all route serves every Gemini method
        return template if isinstance(template, str) else "other"

    def finish(self, scope: dict[str, Any], status: int, started: float, overhead: float | None) -> None:
        ended = time.perf_counter()
        state = scope.get("state", {})
        path: str = scope["path"]
        route = path if path in self.model_paths else self.route(scope)
        ctx = state.get("call")
        model_call = ctx is not None or route in self.model_paths
        key = (route, status, model_call)
        children = self._children.get(key)
        if children is None:
            children = self._request_children(route, status, model_call)
        requests, latency = children
        requests.inc()
        latency.observe(ended - started)
        m = self.metrics
        if overhead is not None:
            m.overhead(route).observe(max(0.0, overhead))
        err: EPError | None = state.get("error")
        rows: list[Any] = state.get("attempts") or []
        served = rows[-1] if rows else None
        domain = None
        if err is not None:
            domain = fault_domain(err)
            m.errors(domain, err.type).inc()
        elif status == 499:
            domain = "caller"
            m.errors(domain, "client_disconnected").inc()
        elif served is not None and served.status != "ok" and status < 400:
            # the answer had started (headers out) when it failed: an in-stream error or a disconnect
            kind = "client_disconnected" if served.status == "cancelled" else (served.error_type or "api_error")
            domain = "caller" if served.status == "cancelled" else domain_of_type(kind)
            m.errors(domain, kind).inc()
        if model_call:
            self.recent.append((time.time(), ended - started, overhead, domain))
        if ctx is not None and ctx.first_token_at is not None and served is not None:
            m.ttft(served.provider, served.model).observe(ctx.first_token_at - started)
            if ctx.token_events > 1 and ctx.last_token_at is not None:
                gap = (ctx.last_token_at - ctx.first_token_at) / (ctx.token_events - 1)
                m.inter_token(served.provider, served.model).observe(gap)
        span = state.get("span")
        if span is not None:
            self._end_spans(span, scope, route, status, ended, overhead, ctx, rows, err, model_call)
        if access_log.isEnabledFor(logging.INFO):
            fields = self._line(scope, route, status, started, ended, overhead, ctx, rows, err, domain)
            handler = sole_json_handler(access_log)
            if handler is not None:
                # ``ep serve``'s own set-up: the line its formatter would write, without the record.
                formatter = cast("JsonFormatter", handler.formatter)
                handler.emit_line(formatter.info_line(time.time(), _ACCESS, ACCESS_MESSAGE, fields))
            else:
                # The record is built directly: ``Logger.info`` would look up the caller's frame and
                # copy ``extra`` key by key, and neither format writes where the call came from.
                record = access_record()
                record.ep = fields
                access_log.handle(record)

    def _line(self, scope: dict[str, Any], route: str, status: int, started: float, ended: float,
              overhead: float | None, ctx: Any, rows: list[Any], err: EPError | None,
              domain: str | None) -> dict[str, Any]:
        # Built key by key into one dict (no keyword dicts for ``update``), the sums over attempts only
        # when there was more than one: a line per request, so its cost is paid on every call.
        state = scope.get("state", {})
        line: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "trace_id": _trace_id(scope),
            "method": scope.get("method"),
            "route": route,
            "status": status,
            "latency_ms": round((ended - started) * 1000, 3),
        }
        if overhead is not None:
            line["overhead_ms"] = round(overhead * 1000, 3)
        if rows:
            served = rows[-1]
            line["key_id"] = served.key_id
            line["team"] = served.team
            line["persona"] = served.persona
            line["run_id"] = served.run_id
            line["session_id"] = served.session_id
            if ctx is not None:
                line["attempts"] = len(rows)
            line["provider"] = served.provider
            line["model"] = served.model
            if len(rows) == 1:
                line["input_tokens"] = served.input_tokens
                line["output_tokens"] = served.output_tokens
                line["cost_usd"] = round(served.cost_usd or 0.0, 9)
            else:
                line["input_tokens"] = sum(r.input_tokens for r in rows)
                line["output_tokens"] = sum(r.output_tokens for r in rows)
                line["cost_usd"] = round(sum(r.cost_usd or 0.0 for r in rows), 9)
        elif ctx is not None:
            line["key_id"] = ctx.key_id
            line["team"] = ctx.team
            line["persona"] = ctx.persona
            line["run_id"] = ctx.run_id
            line["session_id"] = ctx.session_id
            line["attempts"] = 0
        if err is not None:
            line["error_type"] = err.type
            line["fault_domain"] = domain
        return line

    # -- traces ------------------------------------------------------------------------------------
    def start_span(self, scope: dict[str, Any]) -> Any:
        """The server span of a request, continuing an incoming ``traceparent``."""
        from .. import tracing

        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())}
        method, path = scope.get("method", ""), scope["path"]
        return self.tracer.start_span(
            f"{method} {path}", context=tracing.extract(headers), kind=tracing.kind("SERVER"),
            attributes={"http.request.method": method, "url.path": path},
        )

    def _end_spans(self, span: Any, scope: dict[str, Any], route: str, status: int, ended: float,
                   overhead: float | None, ctx: Any, rows: list[Any], err: EPError | None, model_call: bool) -> None:
        """Attributes on the server span, one client span per upstream attempt (siblings, so retries and
        fallbacks show side by side), then end the server span."""
        from .. import tracing

        state = scope.get("state", {})
        method = scope.get("method", "")
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if overhead is not None:
            span.set_attribute("ep.overhead_ms", round(max(0.0, overhead) * 1000, 3))
        if model_call:
            span.set_attribute("gen_ai.operation.name", "chat")
            requested = state.get("request_model")
            if requested:
                span.set_attribute("gen_ai.request.model", requested)
            if state.get("max_tokens") is not None:
                span.set_attribute("gen_ai.request.max_tokens", state["max_tokens"])
            if state.get("input_messages") is not None:
                span.set_attribute("gen_ai.input.messages", state["input_messages"])
        if ctx is not None:
            served = rows[-1] if rows else None
            for name, value in (("ep.key_id", ctx.key_id), ("ep.team", ctx.team), ("ep.session_id", ctx.session_id),
                                ("ep.persona", served.persona if served else ctx.persona),
                                ("ep.run_id", served.run_id if served else ctx.run_id)):
                if value:
                    span.set_attribute(name, value)
            span.set_attribute("ep.attempts", len(rows))
            span.set_attribute("ep.cost_usd", sum(r.cost_usd or 0.0 for r in rows))
            if served is not None:
                span.set_attribute("gen_ai.provider.name", tracing.PROVIDER_NAMES.get(served.provider, served.provider))
                span.set_attribute("gen_ai.response.model", ctx.response_model or served.model)
                span.set_attribute("gen_ai.usage.input_tokens", sum(r.input_tokens for r in rows))
                span.set_attribute("gen_ai.usage.output_tokens", sum(r.output_tokens for r in rows))
                if served.status == "ok":
                    if ctx.response_id:
                        span.set_attribute("gen_ai.response.id", ctx.response_id)
                    if ctx.finish_reason:
                        span.set_attribute("gen_ai.response.finish_reasons", [ctx.finish_reason])
            starts: list[float] = state.get("attempt_starts") or []
            now_pc, now_ns = time.perf_counter(), time.time_ns()

            def ns(pc: float) -> int:
                return now_ns - int((now_pc - pc) * 1e9)

            context = tracing.parent(span)
            for i, (row, started) in enumerate(zip(rows, starts, strict=False)):
                last = i == len(rows) - 1
                attrs: dict[str, Any] = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": tracing.PROVIDER_NAMES.get(row.provider, row.provider),
                    "gen_ai.request.model": row.model,
                    "gen_ai.response.model": (ctx.response_model if last and ctx.response_model else row.model),
                    "gen_ai.usage.input_tokens": row.input_tokens,
                    "gen_ai.usage.output_tokens": row.output_tokens,
                    "ep.attempt": row.attempt,
                    "ep.status": row.status,
                    "ep.cost_usd": row.cost_usd or 0.0,
                }
                if state.get("max_tokens") is not None:
                    attrs["gen_ai.request.max_tokens"] = state["max_tokens"]
                if row.deployment:
                    attrs["ep.deployment"] = row.deployment
                if last and row.status == "ok":
                    if ctx.response_id:
                        attrs["gen_ai.response.id"] = ctx.response_id
                    if ctx.finish_reason:
                        attrs["gen_ai.response.finish_reasons"] = [ctx.finish_reason]
                child = self.tracer.start_span(f"chat {row.model}", context=context, kind=tracing.kind("CLIENT"),
                                               start_time=ns(started), attributes=attrs)
                if row.error_type:
                    tracing.mark_error(child, row.error_type)
                child.end(end_time=ns(started + (row.latency_ms or 0.0) / 1000))
        if err is not None:
            tracing.mark_error(span, err.type, err.message)
        elif status >= 500:
            tracing.mark_error(span, str(status))
        span.end(end_time=time.time_ns() - int((time.perf_counter() - ended) * 1e9))

    # -- live view ---------------------------------------------------------------------------------
    def live(self, window: float = 60.0) -> dict[str, Any]:
        """Requests/s, p50/p99 latency and overhead (ms) and errors by fault domain over the last
        ``window`` seconds, for this process."""
        now = time.time()
        items = [item for item in list(self.recent) if item[0] >= now - window]
        span = max(1.0, min(window, now - self.started))
        latencies = sorted(item[1] for item in items)
        overheads = sorted(item[2] for item in items if item[2] is not None)
        errors: dict[str, int] = {}
        for item in items:
            if item[3] is not None:
                errors[item[3]] = errors.get(item[3], 0) + 1
        return {
            "window_s": window,
            "requests": len(items),
            "rps": round(len(items) / span, 3),
            "latency_ms": {"p50": _quantile(latencies, 0.5), "p99": _quantile(latencies, 0.99)},
            "overhead_ms": {"p50": _quantile(overheads, 0.5), "p99": _quantile(overheads, 0.99)},
            "errors": errors,
        }

    # -- at scrape time ----------------------------------------------------------------------------
    def refresh(self, gateway: Gateway) -> None:
        """Gauges read from live state: breakers of this process (a scrape in multiprocess mode sees the
        worst state any worker reported)."""
        router = gateway.client.router
        breakers = getattr(router, "_breakers", None) or {}
        for target, breaker in list(breakers.items()):
            self.metrics.breaker_state.labels(target).set(BREAKER_STATES.get(breaker.state, 0))

    async def refresh_budgets(self, gateway: Gateway) -> None:
        """USD left in the current period of each configured persona and team budget (keys' budgets are
        not labels: key ids never are)."""
        meter = gateway.client.meter
        if meter is None or meter.budgets is None:
            return
        policy = meter.policy(gateway.client.config or gateway.config)
        for budget in [*policy.persona_budgets.values(), *policy.team_budgets.values()]:
            spent, _ = await meter.budgets.usage(budget)
            self.metrics.budget_remaining.labels(f"{budget.scope}:{budget.name}").set(budget.limit_usd - spent)


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)
