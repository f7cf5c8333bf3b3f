"""The steps every surface shares around a model call: checks, metadata, the call, response headers.

Decoding is the codec's job and is not repeated here; these checks are the gateway's own policy
(who may call what, how big, with which parameters) and must all pass before a provider is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from ..errors import EPError, InvalidRequestError, NotFoundError, UnsupportedParameterError
from ..model import Capabilities, ChatRequest, ChatResponse, EmbeddingResponse, ImagePart
from ..model.address import persona_address, persona_of, provider_of
from ..money.metering import CallContext
from ..routing.attempts import attempts_of, served_by, upstream_attempts
from .auth import OPEN, Principal
from .limits import check_message_sizes
from .metadata import apply as apply_metadata
from .metadata import check_persona_header
from .money import bind as bind_payer
from .observe import session_of
from .state import Gateway
from .streaming import StreamHead


def decode_with(decode: Any, body: dict[str, Any]) -> ChatRequest:
    """Run a codec's ``decode_request``; any failure on client input is a 400, never a 500."""
    try:
        return decode(body)
    except EPError:
        raise
    except ValidationError as exc:
        errors = exc.errors()
        first: Mapping[str, Any] = errors[0] if errors else {}
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidRequestError(
            f"invalid request: {first.get('msg', 'invalid value')}" + (f" at '{param}'" if param else ""),
            param=param,
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InvalidRequestError(f"invalid request body ({type(exc).__name__})") from None


def principal_of(request: Request) -> Principal:
    return request.scope.get("state", {}).get("principal", OPEN)


def prepare(
    gw: Gateway, chat: ChatRequest, request: Request, params: dict[str, str] | None = None
) -> tuple[ChatRequest, CallContext]:
    """Apply headers, limits, key scope and model capabilities; raises before any upstream call.

    Returns the request and who pays for it (the payer to hand to :func:`complete` or :func:`open_stream`)."""
    headers = request.headers
    persona = check_persona_header(headers)
    if persona:
        chat.model = persona_address(persona)
    if not chat.model:
        raise InvalidRequestError("'model' is required", param="model")
    if not chat.messages:
        raise InvalidRequestError("'messages' must not be empty", param="messages")
    check_message_sizes(chat, gw.limits)
    principal = principal_of(request)
    principal.require_model(chat.model)
    meta = chat.metadata
    meta.key_id = principal.key_id or meta.key_id
    addressed = persona_of(chat.model)
    if addressed is not None:
        meta.persona = addressed
    apply_metadata(meta, headers, principal)  # bounded, a key's team wins, persona within the key's scope
    if addressed is None:
        caps = capabilities(gw, chat.model)
        if caps is not None:
            check_supported(chat, caps, params or {})
    return chat, bind_payer(request, principal, chat, session_of(headers), gw.observer)


def capabilities(gw: Gateway, model: str) -> Capabilities | None:
    """Capabilities of a directly addressed model (cached); unknown providers are a 404 here."""
    cache = gw.capability_cache
    if model in cache:
        return cache[model]
    router = gw.client.router
    caps: Capabilities | None = None
    if router is not None:  # deployments and groups too, with the config's overrides applied
        try:
            caps = router.capabilities(model)
        except NotFoundError:
            raise
        except EPError:
            return None
    elif "/" in model or model == "local":
        try:
            provider, resolved = gw.client.resolve(ChatRequest.model_construct(model=model, messages=[]))
        except NotFoundError:
            raise
        except EPError:
            return None
        caps = provider.capabilities(resolved.model)
    if len(cache) < 1024:
        cache[model] = caps
    return caps


def check_supported(chat: ChatRequest, caps: Capabilities, params: dict[str, str]) -> None:
    """400 naming the wire parameter the model cannot honour, instead of a silent drop or an upstream error."""

    def refuse(field: str, what: str) -> None:
        name = params.get(field, field)
        raise UnsupportedParameterError(f"'{name}' is not supported by {chat.model}: {what}", param=name)

    if chat.tools and not caps.tools:
        refuse("tools", "the model cannot call tools")
    if chat.parallel_tool_calls and not caps.parallel_tools:
        refuse("parallel_tool_calls", "the model cannot make parallel tool calls")
    fmt = chat.response_format
    if fmt is not None:
        if fmt.type == "json_schema" and not caps.json_schema:
            refuse("response_format", "no structured output with a JSON schema")
        if fmt.type == "json_object" and not caps.json_object:
            refuse("response_format", "no JSON mode")
    if chat.reasoning is not None and not caps.reasoning:
        refuse("reasoning", "the model has no reasoning controls")
    if caps.max_output_tokens and chat.max_tokens and chat.max_tokens > caps.max_output_tokens:
        refuse("max_tokens", f"at most {caps.max_output_tokens} output tokens")
    if not caps.vision:
        for message in chat.messages:
            if any(isinstance(part, ImagePart) for part in message.content):
                refuse("messages", "the model does not accept images")


def model_headers(response: ChatResponse | EmbeddingResponse) -> dict[str, str]:
    """Who served an answer, after how many upstream attempts, at what cost, under which limits: the
    head of :func:`model_head` as a dictionary, for the routes that answer through starlette."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in model_head(response, {})}


def model_head(response: ChatResponse | EmbeddingResponse, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The ``x-ep-*`` headers of an answer and then its rate-limit headers and ``extra``, as the byte
    pairs a response head is written from (the chat route hands them to ``JSONBytes`` as they are)."""
    attempts = response.attempts
    head = [
        (b"x-ep-provider", (response.provider or "").encode("latin-1")),
        (b"x-ep-model", response.model.encode("latin-1")),
        # At most one attempt (nearly every answer) reports 1 whatever it was: no count to make.
        (b"x-ep-attempts", b"1" if len(attempts) < 2 else str(max(1, upstream_attempts(attempts))).encode("latin-1")),
    ]
    if response.cost_usd is not None:
        head.append((b"x-ep-cost-usd", cost_header(response.cost_usd).encode("latin-1")))
    for more in (response.rate_limits, extra):
        for name, value in more.items():
            head.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return head


def cost_header(cost_usd: float) -> str:
    """``x-ep-cost-usd``: dollars, up to eight decimals, no trailing zeros."""
    return f"{cost_usd:.8f}".rstrip("0").rstrip(".") or "0"


def stream_headers(head: StreamHead, chat: ChatRequest) -> list[tuple[bytes, bytes]]:
    """Provider and model from the upstream's start event, or from the address while it is silent."""
    first = head.first
    attempts = attempts_of(head.events)
    if len(attempts) < 2:  # nearly every stream: its one attempt (if any) serves, and the count is 1
        serving = attempts[0] if attempts else None
        count = b"1"
    else:
        serving = served_by(attempts) or attempts[-1]
        count = str(max(1, upstream_attempts(attempts))).encode()
    provider = getattr(first, "provider", None) or (serving.provider if serving else None)
    model = getattr(first, "model", None) or (serving.model if serving else None)
    if not provider:
        provider = provider_of(chat.model)
    return [
        (b"x-ep-provider", (provider or "").encode()),
        (b"x-ep-model", (model or chat.model).encode()),
        (b"x-ep-attempts", count),
        *((name.encode(), value.encode()) for name, value in head.rate_limits.items()),
    ]


async def complete(gw: Gateway, chat: ChatRequest, payer: CallContext) -> ChatResponse:
    """The call, paid by ``payer``; its attempts are counted by the payer's ``on_attempt`` hook (see
    :mod:`.observe`)."""
    return await gw.client.send(chat, payer=payer)


async def open_stream(gw: Gateway, chat: ChatRequest, payer: CallContext) -> StreamHead:
    """Start the upstream stream; failures before its first event raise here (a proper HTTP status)."""
    return await StreamHead(gw.client.send_stream(chat, payer=payer)).start(gw.first_event_wait)
