"""Which request fields may cross to an upstream, and the record of those that did not.

A wire client may send fields the canonical model does not know (OpenAI ``logprobs``, Anthropic
``container``, Gemini ``generationConfig.responseLogprobs``…). They are worth keeping for an upstream
that speaks the same format, and meaningless (a 400 from the real API) for any other. Some names are
never a client's to set through this side door at all: the model, the prompt, the tools, any spelling
of the output cap and the stream flags are the gateway's, because key scopes, persona policy and
budget holds are decided from the canonical fields. So:

* decoders keep unknown fields as a :class:`Passthrough` tagged with their format, after dropping
  names that belong to the gateway (``system`` on the OpenAI surface, ``generationConfig`` on the
  Anthropic one, ``max_output_tokens`` anywhere…);
* encoders copy passthrough fields only into a body of the same format, add-only and never a reserved
  name, and report everything else;
* what was dropped is collected per call in a context variable the gateway opens around the call
  (the surface that decoded and the provider that encodes never see each other), and becomes the
  ``x-ep-dropped-params`` response header; in strict mode a drop is a 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from ..errors import InvalidRequestError, UnsupportedParameterError
from ..model import ChatRequest, Passthrough, WireFormat

__all__ = [
    "DROPPED_HEADER",
    "ParamReport",
    "apply_extras",
    "check_provider_options",
    "close_report",
    "current_report",
    "drop",
    "drop_all",
    "drop_field",
    "normalize",
    "open_report",
    "split_unknown",
]

DROPPED_HEADER = "x-ep-dropped-params"
# Printable ASCII a header value may carry as is (not the list separator, not "%" itself).
_HEADER_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ",%")

# Names (normalized: lower case, no "_"/"-") no passthrough or option may set: at the top level of a
# body and inside guarded objects (Gemini's generation config).
_RESERVED = frozenset({
    "model", "messages", "contents", "prompt", "system", "systeminstruction", "instructions",
    "tools", "functions", "maxtokens", "maxcompletiontokens", "maxoutputtokens", "maxtokenstosample",
    "maxnewtokens", "stream", "streamoptions", "n", "candidatecount",
})
# Parameters that switch on a provider-run tool: like server tools, refused (not dropped) elsewhere.
_SERVER_PARAMS = frozenset({"web_search_options"})
# Names that, arriving unknown on a surface, belong to another format's policy fields: never kept.
_FOREIGN_POLICY = _RESERVED | frozenset({
    "generationconfig", "toolchoice", "toolconfig", "functioncall", "passthrough", "provideroptions",
})


def normalize(name: str) -> str:
    """``max_output_tokens``, ``maxOutputTokens`` and ``max-output-tokens`` are one name."""
    return name.replace("_", "").replace("-", "").lower()


@dataclass
class ParamReport:
    """What one call dropped; ``names`` turns canonical field names into the client's wire names."""

    strict: bool = False
    names: Mapping[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def header(self) -> str:
        """Names joined for ``x-ep-dropped-params``: a header value is Latin-1 text on the wire, so a
        name a client made up is percent-encoded (UTF-8) outside printable ASCII, and commas too."""
        return ",".join(quote(name, safe=_HEADER_SAFE) for name in self.dropped)


_NO_NAMES: Mapping[str, str] = MappingProxyType({})
_report: ContextVar[ParamReport | None] = ContextVar("ep_param_report", default=None)


def open_report(*, strict: bool = False, names: Mapping[str, str] | None = None) -> ParamReport:
    """Start collecting drops for the current call (the gateway does this per request)."""
    report = ParamReport(strict=strict, names=names if names is not None else _NO_NAMES)  # read only: not copied
    _report.set(report)
    return report


def close_report() -> None:
    """Stop collecting in this context (for callers that reuse one context for many calls)."""
    _report.set(None)


def current_report() -> ParamReport | None:
    return _report.get()


def drop(name: str, why: str) -> None:
    """Record that ``name`` (a wire name) did not cross; in strict mode refuse the request instead."""
    report = _report.get()
    if report is None:
        return
    if report.strict:
        raise UnsupportedParameterError(f"'{name}' {why}", param=name)
    if name not in report.dropped:
        report.dropped.append(name)


def drop_field(canonical: str, upstream: str) -> None:
    """A canonical field the upstream format has no equivalent for, named as the client spelled it."""
    report = _report.get()
    name = report.names.get(canonical, canonical) if report is not None else canonical
    drop(name, f"is not supported by the {upstream} upstream serving this call")


def split_unknown(
    unknown: Mapping[str, Any],
    fmt: WireFormat,
    *,
    leftovers: Mapping[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> Passthrough | None:
    """Decoder side: unknown fields tagged with their format, minus any name that is policy.

    ``leftovers`` are the parts of known fields the canonical model cannot express (an Anthropic
    ``tool_choice`` variant, Gemini ``generationConfig`` extras); they are this format's own and kept.
    """
    kept: dict[str, Any] = dict(leftovers or {})
    for name, value in unknown.items():
        if normalize(name) in _FOREIGN_POLICY:
            drop(name, "is not a parameter of this API and cannot override the gateway's own fields")
        else:
            kept[name] = value
    if not kept and not tools:
        return None
    return Passthrough(format=fmt, fields=kept, tools=list(tools or []))


def check_provider_options(options: Mapping[str, Any], where: str = "provider_options") -> None:
    """Native ``provider_options`` may add upstream fields, never set the model, prompt, tools or cap."""
    for name in options:
        if normalize(name) in _FOREIGN_POLICY:
            raise InvalidRequestError(
                f"'{where}.{name}' is reserved: set it with the request's own field (or not at all)",
                param=f"{where}.{name}",
            )


def _refuse_server_tools(carried: Passthrough, upstream: str) -> None:
    """A provider's own tools cannot run elsewhere; silently answering without them would mislead."""
    names = [_tool_name(tool) for tool in carried.tools] + [n for n in carried.fields if n in _SERVER_PARAMS]
    if names:
        raise UnsupportedParameterError(
            f"tool '{names[0]}' is a {carried.format} server tool; the {upstream} upstream serving this call "
            "cannot run it",
            param="tools" if carried.tools else names[0],
        )


def _tool_name(tool: Mapping[str, Any]) -> str:
    """``name`` (Anthropic), ``custom.name`` (OpenAI), else the type or the only key (``googleSearch``)."""
    kind = tool.get("type")
    inner = tool.get(kind) if isinstance(kind, str) else None
    for candidate in (tool.get("name"), inner.get("name") if isinstance(inner, dict) else None, kind):
        if isinstance(candidate, str):
            return candidate
    return next(iter(tool), "tool")


def _dropped_names(fields: Mapping[str, Any]) -> list[str]:
    """Wire names to report; Gemini's generation config is reported per entry."""
    names: list[str] = []
    for name, value in fields.items():
        if name == "generationConfig" and isinstance(value, dict) and value:
            names.extend(f"generationConfig.{child}" for child in value)
        else:
            names.append(name)
    return names


# Objects whose entries are policy too: Gemini keeps its output cap inside the generation config.
_GUARDED = frozenset({"generationconfig"})


def _add(body: dict[str, Any], extra: Mapping[str, Any], path: str, *, guarded: bool = True) -> None:
    """Add-only merge: nested objects merge, a value the encoder already produced is never replaced.

    Reserved names are refused at the top level and inside guarded objects; deeper down (OpenAI
    ``metadata`` tags, say) a key called ``model`` is just data.
    """
    for name, value in extra.items():
        where = f"{path}{name}"
        inner = normalize(name) in _GUARDED
        if guarded and normalize(name) in _RESERVED:
            drop(where, "is set by the gateway and cannot be passed through")
        elif name not in body:
            body[name] = _clean(value, where) if inner else value
        elif isinstance(body[name], dict) and isinstance(value, dict):
            _add(body[name], value, f"{where}.", guarded=inner)
        elif body[name] != value:
            drop(where, "conflicts with a value the gateway sets")


def _clean(value: Any, where: str) -> Any:
    """A guarded object without its reserved entries."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    _add(out, value, f"{where}.")
    return out


def drop_all(request: ChatRequest, upstream: str) -> None:
    """For upstreams that take no wire format at all (an agent CLI): report every carried field."""
    carried = request.passthrough
    if carried is None:
        return
    _refuse_server_tools(carried, upstream)
    for name in _dropped_names(carried.fields):
        drop(name, f"is a {carried.format} parameter with no equivalent on {upstream}")


def apply_extras(body: dict[str, Any], request: ChatRequest, fmt: WireFormat) -> dict[str, Any]:
    """Encoder side: same-format passthrough, then explicit provider options; never over policy."""
    carried = request.passthrough
    if carried is not None and carried.format == fmt:
        if carried.tools:
            body.setdefault("tools", []).extend(carried.tools)
        _add(body, carried.fields, "")
    elif carried is not None:
        _refuse_server_tools(carried, fmt)
        for name in _dropped_names(carried.fields):
            drop(name, f"is a {carried.format} parameter with no equivalent on the {fmt} upstream serving this call")
    if request.provider_options:
        _add(body, request.provider_options, "provider_options.")
    return body
