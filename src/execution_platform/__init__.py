"""Execution Platform: a provider-agnostic LLM execution layer.

The public API is re-exported here lazily, so ``import execution_platform`` stays fast and pulls in
no provider SDK or HTTP stack until something is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Client": "execution_platform.client",
    "SyncClient": "execution_platform.client",
    "Settings": "execution_platform.config.settings",
    "Provider": "execution_platform.providers.base",
}
_MODEL_NAMES = ["Capabilities", "ChatRequest", "ChatResponse", "ContentPart", "ImagePart", "Message", "RequestMetadata", "ResponseFormat", "StreamAccumulator", "StreamEvent", "TextPart", "ThinkingPart", "ToolCall", "ToolSpec", "Usage"]
_ERROR_NAMES = ["EPError", "AuthenticationError", "BudgetExceededError", "CapabilityMissingError", "ConfigurationError", "ContentFilteredError", "ContextLengthExceededError", "InvalidRequestError", "NotFoundError", "OverloadedError", "PermissionDeniedError", "RateLimitError", "UpstreamConnectionError", "UpstreamServerError", "UpstreamTimeoutError"]
_EXPORTS.update({name: "execution_platform.model" for name in _MODEL_NAMES})
_EXPORTS.update({name: "execution_platform.errors" for name in _ERROR_NAMES})

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .client import Client, SyncClient  # noqa: F401
    from .errors import *  # noqa: F403
    from .model import *  # noqa: F403


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'execution_platform' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
