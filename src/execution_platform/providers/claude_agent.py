"""The ``claude_agent`` provider: Claude Code (through the official Agent SDK) behind the Provider API.

Each call runs the Claude Code CLI once, in the persona's workspace (``EP_WORKSPACE_ROOT/<persona>``,
created on first use), and streams what the agent does as canonical events: its words and thinking,
the tools it runs itself (``AgentToolUse``/``AgentToolResult``), then the run's usage and its own
price (``total_cost_usd``, which becomes the call's ``cost_usd``). The CLI's session id comes back
on ``StartEvent.session_id`` and ``ChatResponse.session_id``; sending it again as
``metadata.session_id`` resumes that session (``--resume``) instead of replaying the history.

Credentials: with ``EP_ANTHROPIC_API_KEY`` / ``EP_ANTHROPIC_BASE_URL`` set, the CLI gets them as
``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``; otherwise it uses its own login. The platform's other
secrets are blanked in the CLI's environment, since the agent can run shell commands.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claude_agent_sdk import ClaudeAgentOptions

from ..errors import ConfigurationError, EPError, InvalidRequestError, StreamInterruptedError, register_secret
from ..model import Capabilities, ChatRequest, ChatResponse, StreamEvent
from ._claude_agent_events import EventMapper, error_from_exception
from ._claude_agent_request import AgentDefaults, build_prompt, check_supported, option_fields
from ._claude_agent_run import AgentRun
from .base import Provider

if TYPE_CHECKING:
    from ..config.settings import Settings

_PERSONA_DIR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Credentials of the platform itself that an agent with a shell must not be able to read.
_HIDDEN_ENV = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
DEFAULT_PERSONA = "default"


class ClaudeAgentProvider(Provider):
    """Claude Code as a provider. Constructor values are defaults a request's provider_options may override."""

    name = "claude_agent"
    # Claude Code's model aliases; full Claude model names work too but are listed under ``anthropic``.
    listed_models = ("sonnet", "opus", "haiku")

    @classmethod
    def lists_model(cls, model: str) -> bool:
        return False

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        cli_path: str | Path | None = None,
        workspace: str | Path | None = None,
        permission_mode: str | None = None,
        max_turns: int | None = None,
        allowed_tools: list[str] | None = None,
        disallowed_tools: list[str] | None = None,
        mcp_servers: dict[str, Any] | None = None,
        replace_system_prompt: bool = False,
        env: dict[str, str] | None = None,
        setting_sources: list[str] | None = None,
        partial_messages: bool = True,
        timeout: float | None = 1800.0,
        idle_timeout: float | None = 600.0,
        stderr: Callable[[str], None] | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.api_key = api_key or (settings.secret("anthropic_api_key") if settings is not None else None)
        self.base_url = base_url or (settings.anthropic_base_url if settings is not None else None)
        register_secret(self.api_key)
        self.cli_path = cli_path
        self.workspace = Path(workspace) if workspace is not None else None
        self.defaults = AgentDefaults(
            permission_mode=permission_mode,
            max_turns=max_turns,
            allowed_tools=list(allowed_tools or []),
            disallowed_tools=list(disallowed_tools or []),
            mcp_servers=dict(mcp_servers or {}),
            replace_system_prompt=replace_system_prompt,
        )
        self.env = dict(env or {})
        self.setting_sources = setting_sources
        self.partial_messages = partial_messages
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.stderr = stderr
        if name:
            self.name = name

    # -- configuration --------------------------------------------------------------------------
    def capabilities(self, model: str) -> Capabilities:
        # "tools" means client-defined function tools, which the agent cannot hand back to the caller.
        return Capabilities(tools=False, parallel_tools=False, vision=False, json_object=False,
                            json_schema=False, streaming=True, system_prompt=True, reasoning=True,
                            context_window=200_000)

    def workspace_for(self, request: ChatRequest) -> Path:
        """The agent's working directory: the configured one, or ``<workspace root>/<persona>``."""
        if self.workspace is not None:
            path = self.workspace
        else:
            persona = request.metadata.persona or DEFAULT_PERSONA
            if not _PERSONA_DIR.match(persona):
                raise InvalidRequestError(f"persona name {persona!r} cannot name a workspace directory",
                                          param="metadata.persona")
            root = self.settings.workspace_root if self.settings is not None else None
            path = (Path(root) if root else Path.cwd() / "workspaces") / persona
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"claude_agent: cannot create workspace {path}: {exc}",
                                     provider=self.name) from exc
        return path.resolve()

    def environment(self, request: ChatRequest) -> dict[str, str]:
        """Variables for the CLI on top of the inherited environment (which the SDK always passes)."""
        env = {k: "" for k in os.environ if k.startswith("EP_") or k in _HIDDEN_ENV}
        if self.api_key:
            env["ANTHROPIC_API_KEY"] = self.api_key
        if self.base_url:
            env["ANTHROPIC_BASE_URL"] = self.base_url
        if request.max_tokens:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(request.max_tokens)
        env.update(self.env)
        return env

    def options(self, request: ChatRequest) -> ClaudeAgentOptions:
        """The SDK options for one call (validated; nothing is started)."""
        check_supported(request)
        fields = option_fields(request, self.defaults)
        return ClaudeAgentOptions(
            **fields,
            cwd=self.workspace_for(request),
            cli_path=self.cli_path,
            env=self.environment(request),
            include_partial_messages=self.partial_messages,
            setting_sources=self.setting_sources,  # type: ignore[arg-type]
            stderr=self.stderr,
        )

    # -- Provider -------------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self.chat_via_stream(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        options = self.options(request)
        prompt = build_prompt(request, resuming=bool(request.metadata.session_id))
        run = AgentRun(prompt, options, timeout=self.timeout, idle_timeout=self.idle_timeout)
        mapper = EventMapper(request.model)
        run.start()
        completed = False
        try:
            while not mapper.finished:
                item = await run.next()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise error_from_exception(item, stderr=run.stderr, emitted=mapper.emitted_output)
                for event in mapper.feed(item):
                    yield event
            if not mapper.finished:
                raise StreamInterruptedError(
                    "claude_agent: the Claude Code CLI stopped before reporting a result"
                    + (f": {run.stderr[-500:]}" if run.stderr else ""),
                    provider=self.name,
                )
            completed = True
        except EPError as exc:
            exc.provider = exc.provider or self.name
            raise
        finally:
            await run.close(graceful=completed)
