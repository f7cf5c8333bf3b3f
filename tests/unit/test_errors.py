"""The error taxonomy: status mapping, retryability and credential scrubbing."""

import pytest

from execution_platform import errors as e


@pytest.mark.parametrize(
    ("status", "kwargs", "cls", "retryable"),
    [
        (400, {}, e.InvalidRequestError, False),
        (400, {"code": "context_length_exceeded"}, e.ContextLengthExceededError, False),
        (401, {}, e.AuthenticationError, False),
        (403, {}, e.PermissionDeniedError, False),
        (404, {}, e.NotFoundError, False),
        (429, {}, e.RateLimitError, True),
        (500, {}, e.UpstreamServerError, True),
        (503, {}, e.UpstreamServerError, True),
        (529, {"upstream_type": "overloaded_error"}, e.OverloadedError, True),
        (408, {}, e.UpstreamTimeoutError, True),
    ],
)
def test_status_mapping(status: int, kwargs: dict, cls: type, retryable: bool) -> None:
    err = e.error_for_status(status, "boom", provider="x", **kwargs)
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.upstream_status == status


def test_retry_after_header_is_kept() -> None:
    err = e.error_for_status(429, "slow down", headers={"retry-after": "7"})
    assert err.retry_after == 7.0
    assert e.error_for_status(429, "x", headers={"retry-after-ms": "1500"}).retry_after == 1.5


def test_keys_never_survive_into_messages() -> None:
    e.register_secret("registered-secret-value-123")
    err = e.InvalidRequestError(
        "bad key sk-abcdefghijklmnop and registered-secret-value-123 and Bearer abc.def-ghijklmn",
        upstream_body='{"key": "AIzaSyA1234567890123456789012"}',
    )
    for text in (err.message, err.upstream_body or ""):
        assert "sk-abcdefghijklmnop" not in text
        assert "registered-secret-value-123" not in text
        assert "abc.def-ghijklmn" not in text
        assert "AIzaSyA1234567890123456789012" not in text
