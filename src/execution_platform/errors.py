"""One exception hierarchy for every failure, whatever provider or surface it comes from.

Modelled on the official ``openai`` SDK: a base class, then one class per kind of failure. Each class
knows the HTTP status the gateway answers with, a stable ``type`` code (used in error bodies, the ledger
and metrics), and whether the failure is worth retrying. The raw upstream status and message are kept
for logs; they are scrubbed of credentials before they are stored (see :func:`scrub`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "CapabilityMissingError",
    "ConfigurationError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "EPError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "StreamInterruptedError",
    "ToolExecutionError",
    "UnsupportedParameterError",
    "UpstreamAuthenticationError",
    "UpstreamConnectionError",
    "UpstreamServerError",
    "UpstreamTimeoutError",
    "error_for_status",
    "scrub",
]



def _linear(pattern: str) -> Any:
    """RE2: scrubbing runs over megabytes of tool output; backtracking ``re`` holds the GIL far longer."""
    import re2  # ~2 MB with libstdc++: loaded by the first scrubbed error, not by every process at start

    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


@functools.cache
def _secret_patterns() -> tuple[Any, ...]:
    return (
        _linear(r"sk-[A-Za-z0-9_\-]{8,}"),
        _linear(r"AIza[0-9A-Za-z_\-]{20,}"),
        _linear(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
        _linear(r"(?i)((?:api[_-]?key|x-api-key|x-goog-api-key|key)[\"'=:\s]+)[A-Za-z0-9._\-]{8,}"),
    )


_registered_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a configured credential so :func:`scrub` removes it wherever it appears."""
    if secret and len(secret) >= 6:
        _registered_secrets.add(secret)


def scrub(text: str | None) -> str | None:
    """Remove anything that looks like a credential from text meant for logs or clients."""
    if not text:
        return text
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _secret_patterns():
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class EPError(Exception):
    """Base of every platform error."""

    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        upstream_status: int | None = None,
        upstream_body: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = scrub(message) or ""
        super().__init__(self.message)
        self.provider = provider
        self.upstream_status = upstream_status
        self.upstream_body = scrub(upstream_body)
        self.retry_after = retry_after
        self.param = param
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, upstream_status={self.upstream_status!r})"

    def to_dict(self) -> dict[str, Any]:
        """Safe, client-facing description (no upstream body)."""
        return {"type": self.type, "message": self.message, "param": self.param, "code": self.code}


class InvalidRequestError(EPError):
    status_code = 400
    type = "invalid_request_error"


class ContextLengthExceededError(InvalidRequestError):
    type = "context_length_exceeded"


class UnsupportedParameterError(InvalidRequestError):
    type = "unsupported_parameter"


class ContentFilteredError(InvalidRequestError):
    type = "content_filtered"


class AuthenticationError(EPError):
    status_code = 401
    type = "authentication_error"


class PermissionDeniedError(EPError):
    status_code = 403
    type = "permission_denied"


class NotFoundError(EPError):
    status_code = 404
    type = "not_found_error"


class BudgetExceededError(EPError):
    """Spend would pass a hard budget. 402, deliberately not 429, so SDKs do not retry it."""

    status_code = 402
    type = "budget_exceeded"


class CapabilityMissingError(EPError):
    status_code = 412
    type = "capability_missing"


class PayloadTooLargeError(EPError):
    status_code = 413
    type = "request_too_large"


class ToolExecutionError(EPError):
    """A tool ran and failed (raised, timed out). 422: the request was valid, the call did not succeed."""

    status_code = 422
    type = "tool_execution_error"


class ConfigurationError(EPError):
    """The platform is not set up for this call (e.g. no API key for the provider).

    503, not 500: the request was fine, this deployment just cannot serve that provider until its
    operator configures it (the message names the variable to set).
    """

    status_code = 503
    type = "configuration_error"


class RateLimitError(EPError):
    status_code = 429
    type = "rate_limit_error"
    retryable = True


class QuotaExceededError(RateLimitError):
    """The provider account's quota or credit is exhausted (OpenAI ``insufficient_quota``, Anthropic's
    "credit balance is too low"). Waiting does not help, so it is not retried on the same target; routing
    still moves on to the next one, which may bill another account."""

    type = "insufficient_quota"
    retryable = False


class OverloadedError(EPError):
    """Anthropic's 529 and similar 'try later' answers.

    The gateway answers 502 (the external contract: upstream failed after retries and fallbacks); the Anthropic surface
    keeps Anthropic's own 529 so its clients see the status they know.
    """

    status_code = 502
    type = "overloaded_error"
    retryable = True


class UpstreamServerError(EPError):
    status_code = 502
    type = "upstream_error"
    retryable = True


class UpstreamAuthenticationError(EPError):
    """The upstream refused the gateway's own provider key (its 401/403), as a gateway answers it.

    Relaying that 401/403 would tell the client its key is wrong (SDKs raise their authentication
    error and users rotate a key that is fine); the fault is the gateway's configuration, so 502.
    """

    status_code = 502
    type = "upstream_authentication_error"


class UpstreamTimeoutError(EPError):
    status_code = 504
    type = "timeout_error"
    retryable = True


class UpstreamConnectionError(EPError):
    status_code = 502
    type = "connection_error"
    retryable = True


class StreamInterruptedError(EPError):
    """The upstream stream broke after it had started; not retryable once tokens reached the client."""

    status_code = 502
    type = "stream_interrupted"
    retryable = True


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after`` / ``retry-after-ms`` headers, when present and numeric."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str | None = None,
    body: str | None = None,
    headers: Any = None,
    upstream_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> EPError:
    """Map an upstream HTTP failure to the taxonomy. Codecs refine ``upstream_type``/``code`` first."""
    kind = (upstream_type or "").lower()
    code_l = (code or "").lower()
    text = message.lower()
    cls: type[EPError]
    if "context_length" in code_l or "context_length" in kind or "context window" in text or (
        "prompt is too long" in text
    ) or "maximum context length" in text:
        cls = ContextLengthExceededError
    elif "content_filter" in code_l or "content_policy" in code_l or "safety" in kind:
        cls = ContentFilteredError
    elif status == 529 or "overloaded" in kind:
        cls = OverloadedError
    elif status == 429:
        cls = RateLimitError
    elif status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 408:
        cls = UpstreamTimeoutError
    elif status == 413:
        cls = PayloadTooLargeError
    elif status in (503,) and "overload" in text:
        cls = OverloadedError
    elif status >= 500:
        cls = UpstreamServerError
    elif status in (400, 409, 422):
        cls = InvalidRequestError
    else:
        cls = UpstreamServerError if status >= 500 else InvalidRequestError
    return cls(
        message or f"upstream returned HTTP {status}",
        provider=provider,
        upstream_status=status,
        upstream_body=body,
        retry_after=parse_retry_after(headers),
        code=code,
        param=param,
    )
