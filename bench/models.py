"""The canonical request on the hot path: pydantic (today) against msgspec and plain slotted classes.

    .venv/bin/python bench/models.py [--n 100000]

Decodes a typical chat body (a system prompt, three turns, one tool, sampling parameters) ``--n``
times each way and prints microseconds per decode:

* ``gateway decode``: what ``/v1/chat/completions`` does today: ``orjson.loads`` then the OpenAI
  codec's ``decode_request`` into the pydantic ``ChatRequest`` (wire mapping and value checks included);
* ``pydantic from JSON``: ``ChatRequest.model_validate_json`` of the same request already in
  canonical shape (the model's own cost, no wire mapping);
* ``msgspec from JSON``: ``msgspec.json.decode`` into equivalent ``msgspec.Struct`` types with the
  same constraints (positive cap, temperature range);
* ``slotted classes``: ``orjson.loads`` then hand-written constructors of ``__slots__`` classes (no
  validation beyond what the code checks).

Needs ``msgspec`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import time
from typing import Annotated, Any

import msgspec
import orjson

from execution_platform.codecs import openai_chat
from execution_platform.model import ChatRequest

WIRE = {
    "model": "openai/gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a careful assistant. Answer briefly."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "Let me check that for you."},
        {"role": "user", "content": "Also tell me about Oslo, please."},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}, "required": ["city"]}}}],
    "temperature": 0.2,
    "max_tokens": 256,
}
WIRE_BYTES = orjson.dumps(WIRE)
CANONICAL_BYTES = orjson.dumps(openai_chat.decode_request(orjson.loads(WIRE_BYTES)).model_dump(exclude_none=True))


class MText(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class MMessage(msgspec.Struct):
    role: str
    content: list[MText] = []


class MTool(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = {}


class MMeta(msgspec.Struct):
    key_id: str | None = None
    team: str | None = None
    persona: str | None = None


class MRequest(msgspec.Struct, forbid_unknown_fields=False):
    model: str
    messages: list[MMessage]
    tools: list[MTool] = []
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(gt=0)] | None = None
    metadata: MMeta = msgspec.field(default_factory=MMeta)


class SText:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class SMessage:
    __slots__ = ("content", "role")

    def __init__(self, role: str, content: list[SText]) -> None:
        self.role = role
        self.content = content


class STool:
    __slots__ = ("description", "name", "parameters")

    def __init__(self, name: str, description: str | None, parameters: dict[str, Any]) -> None:
        self.name, self.description, self.parameters = name, description, parameters


class SRequest:
    __slots__ = ("max_tokens", "messages", "model", "temperature", "tools")

    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body["model"]
        self.messages = [SMessage(m["role"], [SText(m["content"])]) for m in body["messages"]]
        self.tools = [STool(t["function"]["name"], t["function"].get("description"), t["function"]["parameters"])
                      for t in body.get("tools") or ()]
        self.temperature = body.get("temperature")
        self.max_tokens = body.get("max_tokens")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < 1):
            raise ValueError("max_tokens")


def timed(label: str, n: int, fn: Any) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    micros = (time.perf_counter() - start) / n * 1e6
    print(f"| {label} | {micros:.2f} |", flush=True)
    return micros


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    decoder = msgspec.json.Decoder(MRequest)
    print(f"{args.n} decodes of a {len(WIRE_BYTES)}-byte chat body\n\n| way | µs per decode |\n|---|---|")
    timed("gateway decode (orjson + codec → pydantic ChatRequest)", args.n,
          lambda: openai_chat.decode_request(orjson.loads(WIRE_BYTES)))
    timed("pydantic ChatRequest.model_validate_json (canonical shape)", args.n,
          lambda: ChatRequest.model_validate_json(CANONICAL_BYTES))
    timed("msgspec.json.decode into Structs (canonical shape)", args.n, lambda: decoder.decode(CANONICAL_BYTES))
    timed("orjson + slotted classes (wire shape)", args.n, lambda: SRequest(orjson.loads(WIRE_BYTES)))


if __name__ == "__main__":
    main()
