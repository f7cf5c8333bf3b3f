"""A stack of single-provider wrappers answers for its adapter: name, capabilities, counts, caps, closing."""

from __future__ import annotations

from execution_platform.model import Capabilities, ChatRequest
from execution_platform.providers.json_mode import JsonModeProvider
from execution_platform.routing import CircuitBreaker, CircuitBreakerProvider, Endpoint, RetryingProvider
from tests.fakes.scripted import ScriptedProvider


class Adapter(ScriptedProvider):
    """A scripted adapter with its own token count, output cap and a record of being closed."""

    def __init__(self) -> None:
        super().__init__("acme", caps=Capabilities(tools=True, max_output_tokens=777))
        self.closed = 0
        self.counted: list[str] = []
        self.capped: list[str] = []

    async def count_tokens(self, request: ChatRequest) -> int:
        self.counted.append(request.model)
        return 42

    def output_cap(self, request: ChatRequest) -> int | None:
        self.capped.append(request.model)
        return 4096  # a default the adapter fills in, as Anthropic's does

    async def aclose(self) -> None:
        self.closed += 1


def request() -> ChatRequest:
    return ChatRequest.model_validate({"model": "alias", "messages": [{"role": "user", "content": "hi"}]})


async def test_wrapper_stack_delegates_everything_but_the_call_to_its_adapter() -> None:
    adapter = Adapter()
    stack = RetryingProvider(
        CircuitBreakerProvider(Endpoint(JsonModeProvider(adapter), model="own-model"), CircuitBreaker(), model="own-model")
    )

    assert stack.name == "acme"
    assert stack.capabilities("anything").max_output_tokens == 777
    assert await stack.count_tokens(request()) == 42
    assert stack.output_cap(request()) == 4096
    # the endpoint asks for its own model name, as it does when it calls
    assert adapter.counted == ["own-model"] and adapter.capped == ["own-model"]

    await stack.aclose()
    assert adapter.closed == 1
