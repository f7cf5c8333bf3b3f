"""Execution Platform: a provider-agnostic LLM execution layer.

The public API is re-exported here lazily, so ``import execution_platform`` stays fast and pulls in
no provider SDK or HTTP stack until something is used. ``__all__`` and the ``TYPE_CHECKING`` imports
below list the same names (the client, the settings, the provider protocol, every name of
:mod:`.model` and every exception of :mod:`.errors`); tests/unit/test_exports.py holds them equal, so
what a type checker accepts also works at run time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AgentToolResult", "AgentToolUse", "Attempt", "AuthenticationError", "BudgetExceededError",
    "CacheControl", "Capabilities", "CapabilityMissingError", "ChatRequest", "ChatResponse",
    "Client", "ConfigurationError", "ContentFilteredError", "ContentPart",
    "ContextLengthExceededError", "EPError", "EmbeddingRequest", "EmbeddingResponse", "ErrorEvent",
    "FinishEvent", "FinishReason", "ImagePart", "InvalidRequestError", "Message", "NamedToolChoice", "NotFoundError",
    "OverloadedError", "Passthrough", "PayloadTooLargeError", "PermissionDeniedError", "Provider",
    "QuotaExceededError", "RateLimitError", "Reasoning", "RequestMetadata", "ResponseFormat",
    "Role", "Settings", "StartEvent", "StreamAccumulator", "StreamEvent", "StreamInterruptedError",
    "SyncClient", "TextDelta", "TextPart", "ThinkingDelta", "ThinkingPart", "ToolCall",
    "ToolCallDelta", "ToolCallEnd", "ToolCallStart", "ToolChoice", "ToolExecutionError",
    "ToolSpec", "UnsupportedParameterError", "UpstreamAuthenticationError",
    "UpstreamConnectionError", "UpstreamServerError", "UpstreamTimeoutError", "Usage",
    "UsageEvent", "WireFormat", "WireFrame", "WireHint",
]

if TYPE_CHECKING:
    from .client import Client, SyncClient
    from .config.settings import Settings
    from .errors import (
        AuthenticationError,
        BudgetExceededError,
        CapabilityMissingError,
        ConfigurationError,
        ContentFilteredError,
        ContextLengthExceededError,
        EPError,
        InvalidRequestError,
        NotFoundError,
        OverloadedError,
        PayloadTooLargeError,
        PermissionDeniedError,
        QuotaExceededError,
        RateLimitError,
        StreamInterruptedError,
        ToolExecutionError,
        UnsupportedParameterError,
        UpstreamAuthenticationError,
        UpstreamConnectionError,
        UpstreamServerError,
        UpstreamTimeoutError,
    )
    from .model import (
        AgentToolResult,
        AgentToolUse,
        Attempt,
        CacheControl,
        Capabilities,
        ChatRequest,
        ChatResponse,
        ContentPart,
        EmbeddingRequest,
        EmbeddingResponse,
        ErrorEvent,
        FinishEvent,
        FinishReason,
        ImagePart,
        Message,
        NamedToolChoice,
        Passthrough,
        Reasoning,
        RequestMetadata,
        ResponseFormat,
        Role,
        StartEvent,
        StreamAccumulator,
        StreamEvent,
        TextDelta,
        TextPart,
        ThinkingDelta,
        ThinkingPart,
        ToolCall,
        ToolCallDelta,
        ToolCallEnd,
        ToolCallStart,
        ToolChoice,
        ToolSpec,
        Usage,
        UsageEvent,
        WireFormat,
        WireFrame,
        WireHint,
    )
    from .providers.base import Provider

# Where a name lives when it is neither an exception (``errors``) nor part of the model.
_HOMES: dict[str, str] = {
    "Client": "execution_platform.client",
    "SyncClient": "execution_platform.client",
    "Settings": "execution_platform.config.settings",
    "Provider": "execution_platform.providers.base",
}
_EXPORTED = frozenset(__all__)


def _home(name: str) -> str:
    if name in _HOMES:
        return _HOMES[name]
    return "execution_platform.errors" if name.endswith("Error") else "execution_platform.model"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTED:
        raise AttributeError(f"module 'execution_platform' has no attribute {name!r}")
    value = getattr(importlib.import_module(_home(name)), name)
    globals()[name] = value
    return value
