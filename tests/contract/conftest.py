"""The contract suite's parametrization: one entry per adapter, each served by its own fake.

A new adapter joins the whole suite by adding one ``Target`` to ``TARGETS``. Adapters that cannot
serve a feature by design name it in ``Target.lacks`` with the reason; tests needing it call
:func:`requires` and are skipped with that reason. HTTP adapters talk to fake upstream servers;
``claude_agent`` drives a fake Claude Code CLI subprocess (``kind="cli"``).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest

from execution_platform import errors
from execution_platform.model import ChatRequest
from execution_platform.providers.base import Provider
from execution_platform.providers.claude_agent import ClaudeAgentProvider
from execution_platform.providers.http import HttpClient, Timeouts
from execution_platform.providers.registry import provider_class
from tests.fakes.base import FakeUpstream
from tests.fakes.claude_cli import CLIRun, FakeClaudeCLI
from tests.fakes.script import Reply

ONLY_ANTHROPIC_529 = {"overloaded_529": "529 overloaded_error is Anthropic's"}


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    codec_module: str | None
    fake_fixture: str
    kind: Literal["http", "cli"] = "http"
    # feature -> why this adapter cannot serve it (the skip reason of the tests that need it)
    lacks: Mapping[str, str] = field(default_factory=dict)
    # what a failure before any output surfaces as (an HTTP drop vs. a crashed CLI process)
    lost_before_output: tuple[type[errors.EPError], ...] = (
        errors.UpstreamConnectionError, errors.StreamInterruptedError,
    )
    # constructor options of the adapter (e.g. which upstream API it speaks) and the test id
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def id(self) -> str:
        return self.label or self.provider

    @property
    def codec(self) -> ModuleType:
        assert self.codec_module is not None, f"{self.provider} has no wire codec"
        return importlib.import_module(self.codec_module)

    def supports(self, feature: str) -> bool:
        return feature not in self.lacks

    def decode_upstream(self, body: dict[str, Any]) -> ChatRequest:
        """What the adapter sent, read back through the same codec (it is symmetric)."""
        if self.provider == "gemini":
            return self.codec.decode_request(body, model=self.model)
        return self.codec.decode_request(body)


def decode_cli_run(run: CLIRun, model: str) -> ChatRequest:
    """What a Claude Code run was given, as a request: the system prompt flag, then the prompt(s)."""
    system = run.flag("--append-system-prompt") or run.flag("--system-prompt")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": prompt} for prompt in run.prompts]
    return ChatRequest.model_validate({"model": run.flag("--model") or model, "messages": messages})


TARGETS = [
    Target("openai", "gpt-4o-mini", "execution_platform.codecs.openai_chat", "fake_openai", lacks=ONLY_ANTHROPIC_529),
    Target("openai", "gpt-4.1", "execution_platform.codecs.openai_responses", "fake_openai", lacks=ONLY_ANTHROPIC_529,
           options={"api": "responses"}, label="openai-responses"),
    Target("anthropic", "claude-sonnet-4-5", "execution_platform.codecs.anthropic_messages", "fake_anthropic"),
    Target("gemini", "gemini-2.5-flash", "execution_platform.codecs.gemini", "fake_gemini", lacks=ONLY_ANTHROPIC_529),
    Target(
        "claude_agent", "sonnet", None, "fake_claude_cli", kind="cli",
        lacks={
            "tools": "claude_agent runs its own tools; client function tools are refused by design",
            "vision": "claude_agent takes text prompts only; images are refused by design",
            "response_format": "claude_agent refuses response_format (no structured output in Claude Code)",
            "message_history": "claude_agent folds earlier turns into one prompt or resumes a session "
                               "(covered in tests/providers/test_claude_agent.py)",
            "api_key": "claude_agent needs no API key: without one the CLI uses its own login",
            "retry_after": "Claude Code retries by itself and reports no retry-after",
        },
        lost_before_output=(errors.UpstreamServerError,),
    ),
]


def requires(harness: Harness, feature: str) -> None:
    """Skip the calling test, with the adapter's reason, when it cannot serve ``feature`` by design."""
    reason = harness.target.lacks.get(feature)
    if reason is not None:
        pytest.skip(reason)


@dataclass
class Harness:
    target: Target
    fake: Any  # FakeUpstream for HTTP targets, FakeClaudeCLI for the CLI one
    provider: Provider

    def request(self, **fields: Any) -> ChatRequest:
        fields.setdefault("messages", [{"role": "user", "content": "Hello"}])
        return ChatRequest.model_validate({"model": self.target.model, **fields})

    def upstream_request(self, index: int = -1) -> ChatRequest:
        if self.target.kind == "cli":
            return decode_cli_run(self.fake.requests[index], self.target.model)
        calls = [r for r in self.fake.requests if r.method == "POST"]
        return self.target.decode_upstream(calls[index].body)

    def reported_cost(self, reply: Reply) -> float | None:
        """The price the upstream itself reports for ``reply`` (HTTP APIs report none)."""
        return self.fake.reported_cost(reply) if self.target.kind == "cli" else None

    def upstream_baseline(self) -> int:
        """A mark to compare :meth:`upstream_released` against (closed connections / started runs)."""
        return len(self.fake.requests) if self.target.kind == "cli" else self.fake.connections_closed

    async def upstream_released(self, baseline: int, timeout: float = 1.0) -> bool:
        """Whether the adapter let go of the upstream it opened after ``baseline``.

        HTTP: a connection to the fake was closed. CLI: every run started since exited.
        """
        if self.target.kind == "cli":
            return await asyncio.to_thread(self.fake.wait_runs_gone, baseline, timeout)
        return await asyncio.to_thread(self.fake.wait_connections_closed, baseline, timeout)


@pytest.fixture
def fake_claude_cli(tmp_path: Path) -> FakeClaudeCLI:
    return FakeClaudeCLI(tmp_path / "claude-cli")


@pytest.fixture(params=TARGETS, ids=[t.id for t in TARGETS])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    target: Target = request.param
    fake = request.getfixturevalue(target.fake_fixture)
    marker = request.node.get_closest_marker("timeouts")
    timeouts = Timeouts(**{"connect": 2, "read": 5, "total": 20, "stream_idle": 5, **(marker.kwargs if marker else {})})
    if target.kind == "cli":
        # One idle limit covers both the wait for the first output and the gaps between outputs.
        provider: Provider = ClaudeAgentProvider(
            cli_path=fake.cli_path, workspace=fake.directory / "workspace", env=fake.env,
            timeout=timeouts.total, idle_timeout=min(timeouts.read, timeouts.stream_idle),
        )
        yield Harness(target, fake, provider)
        return
    assert isinstance(fake, FakeUpstream)
    http = HttpClient()
    provider = provider_class(target.provider)(
        api_key=fake.api_key, base_url=fake.base_url, timeouts=timeouts, http=http, **target.options
    )
    yield Harness(target, fake, provider)
    await http.aclose()
