"""Which failures earn another try, and where: the same target, another deployment, or the next target.

The three questions get three different answers on purpose, each wider than the one before:

* :func:`retries_same_target` (retry): only a transient failure (the error's ``retryable`` flag: 429,
  408, 5xx, 529, timeouts, connection errors). An open circuit is not retried: it would only be
  refused again.
* :func:`moves_to_next_deployment` (load balancing): also an exhausted quota, which belongs to one
  deployment's account, and an open circuit, which belongs to one deployment. A context-length error
  does not move: every deployment of a group serves the same model, so the prompt is too long for all.
* :func:`moves_to_next_target` (fallback chain): also a context-length error, since the next target may
  be a model with a larger window, and a missing key (``ConfigurationError``), since the next target may
  need none: that is what lets a persona fall back from a cloud model to the local one on a machine
  with no keys.

Any other error (a 400, a refused key, a content filter) is the caller's answer wherever it is sent.
"""

from __future__ import annotations

from ..errors import ConfigurationError, ContextLengthExceededError, EPError, QuotaExceededError
from .breaker import CircuitOpenError

__all__ = ["moves_to_next_deployment", "moves_to_next_target", "retries_same_target"]


def retries_same_target(err: EPError) -> bool:
    """Whether calling the same target again may succeed (how long to wait is the retry policy's)."""
    return err.retryable and not isinstance(err, CircuitOpenError)


def moves_to_next_deployment(err: EPError) -> bool:
    """Whether another deployment of the same model may still answer."""
    return err.retryable or isinstance(err, QuotaExceededError)


def moves_to_next_target(err: EPError) -> bool:
    """Whether the next target of a fallback chain (possibly another model or provider) may still answer."""
    return moves_to_next_deployment(err) or isinstance(err, ContextLengthExceededError | ConfigurationError)
