"""The HTTP gateway: one server speaking the native, OpenAI and Anthropic wire formats.

Each surface decodes with its wire codec, calls the platform's :class:`~execution_platform.client.Client`
with a canonical request and encodes the answer back in the caller's own format, whatever provider
served it. ``create_app`` is imported lazily so ``import execution_platform.gateway`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from .app import create_app as factory

    return factory(*args, **kwargs)
