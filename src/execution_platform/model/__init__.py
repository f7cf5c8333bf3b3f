"""The canonical model (the SPI): everything inside the platform speaks these types.

It imports nothing else of ours, so codecs, providers, routing and the gateway can all depend on it
without cycles. Wire formats are translated to and from these types by ``execution_platform.codecs``.
"""

from .accumulate import StreamAccumulator
from .capabilities import Capabilities
from .content import CacheControl, ContentPart, ImagePart, TextPart, ThinkingPart
from .embeddings import EmbeddingRequest, EmbeddingResponse
from .events import (
    AgentToolResult,
    AgentToolUse,
    ErrorEvent,
    FinishEvent,
    StartEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
    WireFrame,
)
from .messages import Message, Role, ToolCall
from .request import (
    ChatRequest,
    NamedToolChoice,
    Passthrough,
    Reasoning,
    RequestMetadata,
    ResponseFormat,
    ToolChoice,
    ToolSpec,
    WireFormat,
    WireHint,
)
from .response import Attempt, ChatResponse, FinishReason, Usage

__all__ = [
    "AgentToolResult",
    "AgentToolUse",
    "Attempt",
    "CacheControl",
    "Capabilities",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ErrorEvent",
    "FinishEvent",
    "FinishReason",
    "ImagePart",
    "Message",
    "NamedToolChoice",
    "Passthrough",
    "Reasoning",
    "RequestMetadata",
    "ResponseFormat",
    "Role",
    "StartEvent",
    "StreamAccumulator",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ThinkingPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolChoice",
    "ToolSpec",
    "Usage",
    "UsageEvent",
    "WireFormat",
    "WireFrame",
    "WireHint",
]
