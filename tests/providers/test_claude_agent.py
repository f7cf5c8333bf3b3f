"""The claude_agent provider: through a fake Claude Code CLI, and end to end with the real bundled CLI.

The fake CLI (tests/fakes/claude_cli.py) is a real subprocess speaking the SDK's stream-json control
protocol; it records argv, cwd, environment and stdin so the mapping can be checked on what was
really sent. The end-to-end tests run the CLI shipped in the claude-agent-sdk wheel against the fake
Anthropic upstream, offline, with a throw-away HOME so no real login is ever touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execution_platform.client import Client
from execution_platform.config.settings import Settings
from execution_platform.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    StreamInterruptedError,
    UnsupportedParameterError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from execution_platform.model import (
    AgentToolResult,
    AgentToolUse,
    ChatRequest,
    FinishEvent,
    StartEvent,
    TextDelta,
    ThinkingDelta,
    UsageEvent,
)
from execution_platform.providers.claude_agent import ClaudeAgentProvider
from execution_platform.providers.registry import create_provider
from tests.fakes import claude_cli as fc
from tests.fakes.script import Reply, ToolCallSpec
from tests.streams import fold

Script = Callable[..., Path]


def request(*messages: dict[str, Any], model: str = "sonnet", **extra: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": model, "messages": list(messages), **extra})


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(path))
    return path


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Script:
    def write(frames: list[dict[str, Any]] | None = None, **options: Any) -> Path:
        path = fc.write_script(tmp_path / "script.json", frames, **options)
        monkeypatch.setenv("FAKE_CLAUDE_SCRIPT", str(path))
        return path

    return write


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, workspace_root=tmp_path / "workspaces")


@pytest.fixture
def provider(tmp_path: Path, settings: Settings, record: Path) -> ClaudeAgentProvider:
    return ClaudeAgentProvider(settings=settings, cli_path=fc.install(tmp_path))


def started(record: Path) -> dict[str, Any]:
    return next(e for e in fc.read_record(record) if e["event"] == "start")


def sent_user_messages(record: Path) -> list[dict[str, Any]]:
    return [e["message"] for e in fc.read_record(record) if e["event"] == "stdin" and e["message"]["type"] == "user"]


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie left for init to reap counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.02)
    return False


AGENT_RUN = [
    fc.assistant(fc.thinking("I should read it.", "sig-1"), fc.text("Let me look.")),
    fc.assistant(fc.tool_use("toolu_01", "Read", {"file_path": "notes.txt"})),
    fc.tool_result("toolu_01", [{"type": "text", "text": "pineapple"}]),
    fc.assistant(fc.tool_use("toolu_02", "Bash", {"command": "false"})),
    fc.tool_result("toolu_02", "exit code 1", is_error=True),
    fc.assistant(fc.text("The word is pineapple.")),
    fc.result("The word is pineapple.", cost=0.0421, input_tokens=100, output_tokens=30, cache_read=50,
              cache_write=10, num_turns=3),
]


# -- (a) through the fake CLI ---------------------------------------------------------------------
async def test_stream_maps_text_thinking_tools_usage_and_cost(provider: ClaudeAgentProvider, script: Script) -> None:
    script(AGENT_RUN, session_id="sess-1")
    events = [e async for e in provider.stream(request(user("What is the word?")))]

    assert isinstance(events[0], StartEvent)
    assert events[0].session_id == "sess-1" and events[0].provider == "claude_agent"
    assert isinstance(events[-2], UsageEvent) and isinstance(events[-1], FinishEvent)
    assert events[-1].reason == "stop" and events[-1].raw_reason == "end_turn"
    usage = events[-2]
    assert usage.cost_usd == pytest.approx(0.0421)
    assert usage.usage.input_tokens == 160 and usage.usage.cached_input_tokens == 50
    assert usage.usage.cache_write_tokens == 10 and usage.usage.output_tokens == 30
    # Token-level streaming: the text arrives in several deltas (partial messages are on).
    assert len([e for e in events if isinstance(e, TextDelta)]) > 2
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "I should read it." and thinking[-1].signature == "sig-1"
    uses = [e for e in events if isinstance(e, AgentToolUse)]
    results = [e for e in events if isinstance(e, AgentToolResult)]
    assert [(u.id, u.name, u.arguments) for u in uses] == [
        ("toolu_01", "Read", {"file_path": "notes.txt"}), ("toolu_02", "Bash", {"command": "false"})]
    assert [(r.tool_call_id, r.content, r.is_error) for r in results] == [
        ("toolu_01", "pineapple", False), ("toolu_02", "exit code 1", True)]
    # Every tool result comes after its tool use.
    assert events.index(uses[1]) < events.index(results[1])

    folded = fold(events)
    assert folded.message.text == "Let me look.\n\nThe word is pineapple."
    assert folded.message.tool_calls == []  # the agent's own tools are not client tool calls
    assert folded.cost_usd == pytest.approx(0.0421) and folded.session_id == "sess-1"


async def test_chat_folds_the_stream_without_partial_messages(tmp_path: Path, settings: Settings, record: Path,
                                                              script: Script) -> None:
    script(AGENT_RUN, session_id="sess-2")
    provider = ClaudeAgentProvider(settings=settings, cli_path=fc.install(tmp_path), partial_messages=False)
    answer = await provider.chat(request(user("What is the word?")))
    assert "--include-partial-messages" not in started(record)["argv"]
    assert answer.message.text == "Let me look.\n\nThe word is pineapple."
    assert answer.message.thinking[0].text == "I should read it."
    assert answer.cost_usd == pytest.approx(0.0421) and answer.usage.output_tokens == 30
    assert answer.session_id == "sess-2" and answer.provider == "claude_agent" and answer.finish_reason == "stop"


async def test_request_maps_to_cli_flags_workspace_and_environment(
    tmp_path: Path, record: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EP_MASTER_KEY", "master-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-provider-key")
    settings = Settings(_env_file=None, workspace_root=tmp_path / "ws-root", anthropic_api_key="sk-ant-test-123",
                        anthropic_base_url="http://127.0.0.1:9/anthropic")
    provider = create_provider("claude_agent", settings, cli_path=str(fc.install(tmp_path)))
    assert isinstance(provider, ClaudeAgentProvider)
    script([fc.assistant(fc.text("ok")), fc.result("ok")])
    mcp = {"files": {"type": "stdio", "command": "mcp-files", "args": ["--root", "."]}}
    await provider.chat(request(
        {"role": "system", "content": "You are the architect."},
        {"role": "developer", "content": "Be terse."},
        user("design it"),
        model="opus", max_tokens=2048,
        metadata={"persona": "architect"},
        provider_options={"max_turns": 4, "allowed_tools": ["Read", "Grep"], "disallowed_tools": ["Bash"],
                          "permission_mode": "acceptEdits", "mcp_servers": mcp},
    ))
    start = started(record)
    argv = start["argv"]
    assert flag(argv, "--model") == "opus"
    assert flag(argv, "--append-system-prompt") == "You are the architect.\n\nBe terse."
    assert flag(argv, "--max-turns") == "4"
    assert flag(argv, "--allowedTools") == "Read,Grep" and flag(argv, "--disallowedTools") == "Bash"
    assert flag(argv, "--permission-mode") == "acceptEdits"
    assert '"mcp-files"' in flag(argv, "--mcp-config")
    workspace = tmp_path / "ws-root" / "architect"
    assert workspace.is_dir() and Path(start["cwd"]) == workspace.resolve()
    env = start["env"]
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-test-123"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/anthropic"
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "2048"
    assert env["EP_MASTER_KEY"] == "" and env["OPENAI_API_KEY"] == ""  # no platform secrets for the agent
    assert sent_user_messages(record)[0]["message"]["content"] == "design it"


async def test_without_anthropic_settings_the_cli_keeps_its_own_login(
    provider: ClaudeAgentProvider, record: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    script([fc.assistant(fc.text("ok")), fc.result("ok")])
    await provider.chat(request({"role": "system", "content": "Persona."}, user("hi"), model="claude-sonnet-4-5"))
    start = started(record)
    assert "ANTHROPIC_API_KEY" not in start["env"] and "ANTHROPIC_BASE_URL" not in start["env"]
    assert flag(start["argv"], "--model") == "claude-sonnet-4-5"
    assert Path(start["cwd"]).name == "default"


async def test_history_is_folded_into_the_prompt_without_a_session(
    provider: ClaudeAgentProvider, record: Path, script: Script
) -> None:
    script()  # the fake echoes the prompt
    answer = await provider.chat(request(user("My name is Ada."), {"role": "assistant", "content": "Hello Ada."},
                                         user("What is my name?")))
    prompt = sent_user_messages(record)[0]["message"]["content"]
    assert "<conversation_history>" in prompt and "User: My name is Ada." in prompt
    assert "Assistant: Hello Ada." in prompt and prompt.endswith("What is my name?")
    assert not any(a.startswith("--resume") for a in started(record)["argv"])
    assert answer.message.text == f"echo: {prompt}"


async def test_session_id_resumes_the_session_with_only_the_new_turn(
    provider: ClaudeAgentProvider, record: Path, script: Script
) -> None:
    script()
    answer = await provider.chat(request(user("My name is Ada."), {"role": "assistant", "content": "Hello Ada."},
                                         user("What is my name?"), metadata={"session_id": "sess-ada"}))
    assert "--resume=sess-ada" in started(record)["argv"]
    assert sent_user_messages(record)[0]["message"]["content"] == "What is my name?"
    assert answer.session_id == "sess-ada"


@pytest.mark.parametrize(
    ("result", "expected", "fragment"),
    [
        (fc.result("Invalid API key · Please run /login", is_error=True), AuthenticationError, "Invalid API key"),
        (fc.result("API Error: 429 rate limited", is_error=True, api_error_status=429), RateLimitError, "429"),
        (fc.result("API Error: Overloaded", is_error=True, api_error_status=529), OverloadedError, "Overloaded"),
        (fc.result(None, is_error=True, subtype="error_during_execution", errors=["tool crashed"]),
         UpstreamServerError, "tool crashed"),
    ],
)
async def test_error_results_map_to_the_taxonomy(
    provider: ClaudeAgentProvider, script: Script, result: dict[str, Any], expected: type, fragment: str
) -> None:
    script([fc.assistant(fc.text("working")), result])
    with pytest.raises(expected) as info:
        await provider.chat(request(user("go")))
    assert fragment in info.value.message and info.value.provider == "claude_agent"


async def test_max_turns_ends_the_run_like_a_truncated_answer(provider: ClaudeAgentProvider, script: Script) -> None:
    script([fc.assistant(fc.text("partial work")), fc.result(None, is_error=True, subtype="error_max_turns")])
    answer = await provider.chat(request(user("go")))
    assert answer.finish_reason == "length" and answer.raw_finish_reason == "error_max_turns"
    assert answer.message.text == "partial work"


async def test_not_logged_in_cli_exit_is_an_authentication_error(provider: ClaudeAgentProvider, script: Script) -> None:
    script(exit_before_init={"code": 1, "stderr": "Error: Not logged in. Please run /login\n"})
    with pytest.raises(AuthenticationError):
        await provider.chat(request(user("hi")))


async def test_crash_before_output_is_an_upstream_error(provider: ClaudeAgentProvider, script: Script) -> None:
    script([fc.crash(3, "segmentation fault\n")])
    with pytest.raises(UpstreamServerError) as info:
        await provider.chat(request(user("hi")))
    assert "code 3" in info.value.message and "segmentation fault" in info.value.message


async def test_crash_mid_stream_is_an_interrupted_stream(provider: ClaudeAgentProvider, script: Script) -> None:
    script([fc.assistant(fc.text("half an answer")), fc.crash(137)])
    seen: list[Any] = []
    with pytest.raises(StreamInterruptedError):
        async for event in provider.stream(request(user("hi"))):
            seen.append(event)
    assert any(isinstance(e, TextDelta) for e in seen)


async def test_missing_cli_is_a_configuration_error(settings: Settings, tmp_path: Path) -> None:
    provider = ClaudeAgentProvider(settings=settings, cli_path=tmp_path / "no-such-claude")
    with pytest.raises(ConfigurationError):
        await provider.chat(request(user("hi")))


async def test_closing_the_stream_also_kills_what_the_agent_started(
    provider: ClaudeAgentProvider, record: Path, script: Script
) -> None:
    script([fc.spawn("sleep", "60"), fc.assistant(fc.text("running a command")), fc.sleep(60), fc.result("never")])
    stream = provider.stream(request(user("long task")))
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    child = next(e["pid"] for e in fc.read_record(record) if e["event"] == "spawn")
    assert not gone(child, timeout=0.1)
    await stream.aclose()
    assert gone(started(record)["pid"]) and gone(child)


async def test_idle_timeout_ends_the_run_and_kills_the_cli(tmp_path: Path, settings: Settings, record: Path,
                                                          script: Script) -> None:
    script([fc.assistant(fc.text("starting")), fc.sleep(60), fc.result("never")])
    provider = ClaudeAgentProvider(settings=settings, cli_path=fc.install(tmp_path), idle_timeout=0.5)
    with pytest.raises(UpstreamTimeoutError):
        await provider.chat(request(user("hi")))
    assert gone(started(record)["pid"])


@pytest.mark.parametrize(
    ("extra", "error", "param"),
    [
        ({"tools": [{"name": "lookup"}]}, UnsupportedParameterError, "tools"),
        ({"stop": ["END"]}, UnsupportedParameterError, "stop"),
        ({"provider_options": {"temperature_boost": 1}}, UnsupportedParameterError, "provider_options.temperature_boost"),
        ({"provider_options": {"permission_mode": "yolo"}}, InvalidRequestError, "provider_options.permission_mode"),
        ({"metadata": {"persona": "../escape"}}, InvalidRequestError, "metadata.persona"),
        ({"provider_options": {"max_budget_usd": "lots"}}, InvalidRequestError, "provider_options.max_budget_usd"),
        ({"provider_options": {"max_budget_usd": -1}}, InvalidRequestError, "provider_options.max_budget_usd"),
    ],
)
async def test_unsupported_requests_are_refused_before_starting(
    provider: ClaudeAgentProvider, record: Path, extra: dict[str, Any], error: type, param: str
) -> None:
    with pytest.raises(error) as info:
        await provider.chat(request(user("hi"), **extra))
    assert info.value.param == param
    assert fc.read_record(record) == []  # no CLI was started


@pytest.mark.parametrize(
    ("built", "param"),
    [
        (lambda: request({"role": "system", "content": "be\x00brief"}, user("hi")), "messages"),
        (lambda: request(user("hi"), model="son\x00net"), "model"),
        (lambda: request(user("hi"), metadata={"session_id": "s\x00"}), "metadata.session_id"),
        (lambda: request(user("hi"), provider_options={"allowed_tools": ["Re\x00ad"]}), "provider_options.allowed_tools"),
    ],
)
async def test_a_nul_character_bound_for_the_cli_command_line_is_a_400_naming_it(
    provider: ClaudeAgentProvider, record: Path, built: Callable[[], ChatRequest], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.chat(built())
    assert info.value.param == param
    assert fc.read_record(record) == []  # no CLI was started


async def test_conversation_must_end_with_a_user_turn(provider: ClaudeAgentProvider) -> None:
    with pytest.raises(InvalidRequestError):
        await provider.chat(request(user("hi"), {"role": "assistant", "content": "hello"}))


async def test_client_routes_claude_agent_models(tmp_path: Path, settings: Settings, record: Path, script: Script) -> None:
    script()
    provider = ClaudeAgentProvider(settings=settings, cli_path=fc.install(tmp_path))
    async with Client(settings, providers={"claude_agent": provider}) as client:
        answer = await client.chat(model="claude_agent/sonnet", messages=[user("ping")])
    assert answer.message.text == "echo: ping"
    assert flag(started(record)["argv"], "--model") == "sonnet"


# -- (b) end to end with the real Claude Code CLI bundled in the wheel ----------------------------
@pytest.fixture
def offline_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A throw-away HOME/config dir and the CLI's switches for no telemetry, updates or side traffic."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
    }
    for key in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return env


async def test_real_cli_runs_a_full_agent_turn_with_a_tool(fake_anthropic: Any, tmp_path: Path,
                                                           offline_cli_env: dict[str, str]) -> None:
    workspace = tmp_path / "workspaces" / "reader"
    workspace.mkdir(parents=True)
    notes = workspace / "notes.txt"
    notes.write_text("the secret word is pineapple\n")
    fake_anthropic.enqueue(
        Reply(text=None, tool_calls=[ToolCallSpec(name="Read", arguments={"file_path": str(notes)})]),
        Reply(text="The secret word is pineapple.", input_tokens=40, output_tokens=9),
    )
    settings = Settings(_env_file=None, workspace_root=tmp_path / "workspaces", anthropic_api_key=fake_anthropic.api_key,
                        anthropic_base_url=fake_anthropic.base_url)
    provider = ClaudeAgentProvider(settings=settings, env=offline_cli_env)
    events = [e async for e in provider.stream(request(user("What does notes.txt say?"),
                                                       metadata={"persona": "reader"}))]

    uses = [e for e in events if isinstance(e, AgentToolUse)]
    results = [e for e in events if isinstance(e, AgentToolResult)]
    assert [u.name for u in uses] == ["Read"] and uses[0].arguments["file_path"] == str(notes)
    assert results[0].tool_call_id == uses[0].id and "pineapple" in results[0].content and not results[0].is_error
    answer = fold(events)
    assert answer.message.text == "The secret word is pineapple."
    assert answer.usage.output_tokens == 7 + 9 and answer.cost_usd is not None and answer.cost_usd > 0
    assert answer.session_id
    # The model really got the file's content back as the tool result.
    model_calls = [r for r in fake_anthropic.requests if r.path == "/v1/messages"]
    assert len(model_calls) == 2
    assert "pineapple" in str(model_calls[1].body["messages"][-1]["content"])
    assert all(r.headers.get("x-api-key") == fake_anthropic.api_key for r in model_calls)


async def test_real_cli_resumes_a_session(fake_anthropic: Any, tmp_path: Path, offline_cli_env: dict[str, str]) -> None:
    fake_anthropic.enqueue(Reply(text="Nice to meet you, Ada."), Reply(text="Your name is Ada."))
    settings = Settings(_env_file=None, workspace_root=tmp_path / "workspaces", anthropic_api_key=fake_anthropic.api_key,
                        anthropic_base_url=fake_anthropic.base_url)
    provider = ClaudeAgentProvider(settings=settings, env=offline_cli_env)
    first = await provider.chat(request(user("My name is Ada.")))
    second = await provider.chat(request(user("What is my name?"), metadata={"session_id": first.session_id}))
    assert second.message.text == "Your name is Ada."
    history = str(fake_anthropic.requests[-1].body["messages"])
    assert "My name is Ada." in history and "Nice to meet you, Ada." in history


def test_ep_chat_with_claude_agent_model(fake_anthropic: Any, tmp_path: Path, offline_cli_env: dict[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from execution_platform.cli import app

    monkeypatch.chdir(tmp_path)
    for key, value in offline_cli_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("EP_ANTHROPIC_API_KEY", fake_anthropic.api_key)
    monkeypatch.setenv("EP_ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    monkeypatch.setenv("EP_WORKSPACE_ROOT", str(tmp_path / "workspaces"))
    fake_anthropic.enqueue(Reply(text="Hello from the agent."))
    result = CliRunner().invoke(app, ["chat", "--model", "claude_agent/sonnet", "say hello"])
    assert result.exit_code == 0, result.output
    assert "Hello from the agent." in result.output
    assert (tmp_path / "workspaces" / "default").is_dir()
