"""Persona routing and resilience: capability-aware selection, retries, fallbacks, breakers, balancing.

Each piece is a :class:`~execution_platform.providers.base.Provider` wrapping another, so they compose
(see :mod:`.router` for the stacks the router builds). Attempts travel up through the stack; read them
with :func:`attempts_of` on a response, a stream or an error.
"""

from ..model.address import PERSONA_PREFIX
from .attempts import RoutedStream, attempts_of, served_by, upstream_attempts
from .balance import BalancedProvider, Member
from .breaker import CircuitBreaker, CircuitBreakerProvider, CircuitOpenError
from .capabilities import Needs, missing, needs_of
from .endpoint import Endpoint
from .fallback import FallbackProvider, StreamBrokenError, Target
from .retry import RetryingProvider, RetryPolicy
from .router import Router

__all__ = [
    "PERSONA_PREFIX",
    "BalancedProvider",
    "CircuitBreaker",
    "CircuitBreakerProvider",
    "CircuitOpenError",
    "Endpoint",
    "FallbackProvider",
    "Member",
    "Needs",
    "RetryPolicy",
    "RetryingProvider",
    "RoutedStream",
    "Router",
    "StreamBrokenError",
    "Target",
    "attempts_of",
    "missing",
    "needs_of",
    "served_by",
    "upstream_attempts",
]
