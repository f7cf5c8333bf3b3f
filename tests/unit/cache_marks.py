"""Put a prompt-cache breakpoint on everything that can carry one (for the cross-format codec tests)."""

from __future__ import annotations

from execution_platform.model import CacheControl, ChatRequest, ImagePart, Message, TextPart


def marked(request: ChatRequest, cache: CacheControl | None = None) -> ChatRequest:
    """A copy of ``request`` whose every text/image part, tool call, tool result and tool is marked."""
    mark = cache or CacheControl(ttl="1h")

    def message(msg: Message) -> Message:
        content = [
            p.model_copy(update={"cache_control": mark}) if isinstance(p, TextPart | ImagePart) else p
            for p in msg.content
        ]
        calls = [c.model_copy(update={"cache_control": mark}) for c in msg.tool_calls]
        update = {"content": content, "tool_calls": calls}
        if msg.role == "tool":
            update["cache_control"] = mark
        return msg.model_copy(update=update)

    return request.model_copy(update={
        "messages": [message(m) for m in request.messages],
        "tools": [t.model_copy(update={"cache_control": mark}) for t in request.tools],
    })
