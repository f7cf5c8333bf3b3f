"""The three move-on policies differ on purpose: each failure earns exactly the tries listed here."""

from __future__ import annotations

import pytest

from execution_platform.errors import (
    ConfigurationError,
    ContextLengthExceededError,
    EPError,
    InvalidRequestError,
    QuotaExceededError,
    RateLimitError,
    UpstreamServerError,
)
from execution_platform.routing.breaker import CircuitOpenError
from execution_platform.routing.moves import (
    moves_to_next_deployment,
    moves_to_next_target,
    retries_same_target,
)


@pytest.mark.parametrize(
    ("err", "same_target", "next_deployment", "next_target"),
    [
        (RateLimitError("slow down"), True, True, True),
        (UpstreamServerError("boom"), True, True, True),
        (CircuitOpenError("open"), False, True, True),
        (QuotaExceededError("spent"), False, True, True),
        (ContextLengthExceededError("too long"), False, False, True),
        (ConfigurationError("no key"), False, False, True),
        (InvalidRequestError("bad"), False, False, False),
    ],
)
def test_each_failure_earns_its_own_tries(
    err: EPError, same_target: bool, next_deployment: bool, next_target: bool
) -> None:
    assert retries_same_target(err) is same_target
    assert moves_to_next_deployment(err) is next_deployment
    assert moves_to_next_target(err) is next_target
