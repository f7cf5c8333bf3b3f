"""One Claude Code CLI run: the SDK conversation in its own task, deadlines, and no orphans.

The SDK is driven from a dedicated task that pushes its messages into a queue. The caller's
generator only waits on that queue, so the caller can time out, cancel or stop listening at any
moment without tearing anyio cancel scopes across tasks. When a run does not end normally the CLI
and everything it spawned (Bash commands, MCP servers) get SIGTERM at once — synchronously, before
any await, so even a cancellation that interrupts the clean-up cannot skip it — and SIGKILL if they
are still there after a grace period. The SDK's own close then reaps the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions, query
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

from ..errors import UpstreamTimeoutError

_END = object()
KILL_GRACE_SECONDS = 2.0


class _TrackedTransport(SubprocessCLITransport):
    """The SDK's subprocess transport, remembering the CLI's pid so the run can always end it."""

    pid: int | None = None

    async def connect(self) -> None:
        await super().connect()
        process = getattr(self, "_process", None)  # private in the SDK; absent only in a future shape
        self.pid = getattr(process, "pid", None)


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (Linux /proc; empty where it is unavailable)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for children_file in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children = [int(c) for c in children_file.read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            pending.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes: it only waits to be reaped
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class AgentRun:
    """Start with :meth:`start`, read with :meth:`next`, always finish with :meth:`close`."""

    def __init__(self, prompt: str, options: ClaudeAgentOptions, *, timeout: float | None,
                 idle_timeout: float | None) -> None:
        self.stderr_lines: deque[str] = deque(maxlen=50)
        user_stderr = options.stderr

        def on_stderr(line: str) -> None:
            self.stderr_lines.append(line)
            if user_stderr is not None:
                user_stderr(line)

        options.stderr = on_stderr
        self.prompt = prompt
        self.options = options
        self.transport = _TrackedTransport(prompt=prompt, options=options)
        self.deadline = time.monotonic() + timeout if timeout else None
        self.idle_timeout = idle_timeout
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._pids: list[int] = []

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="claude-agent-run")

    async def _pump(self) -> None:
        messages = query(prompt=self.prompt, options=self.options, transport=self.transport)
        try:
            async for message in messages:
                self._queue.put_nowait(message)
        except Exception as exc:
            self._queue.put_nowait(exc)
        finally:
            self._queue.put_nowait(_END)
            # The SDK annotates query() as AsyncIterator; it is an async generator.
            await messages.aclose()  # type: ignore[attr-defined]

    async def next(self) -> Any:
        """The next SDK message, an exception raised by the SDK, or ``None`` at the end."""
        waits = [w for w in (self.idle_timeout,
                             self.deadline - time.monotonic() if self.deadline else None) if w is not None]
        wait = max(0.0, min(waits)) if waits else None
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the caller's cancellation
            # when the item arrives at the same moment.
            async with asyncio.timeout(wait):
                item = await self._queue.get()
        except TimeoutError:
            total = self.deadline is not None and time.monotonic() >= self.deadline
            raise UpstreamTimeoutError(
                "claude_agent: the run exceeded its time limit" if total
                else f"claude_agent: no output from the Claude Code CLI for {self.idle_timeout:g}s",
                provider="claude_agent",
            ) from None
        return None if item is _END else item

    def terminate(self) -> None:
        """SIGTERM the CLI and its process tree now (no await: safe on any cancellation path)."""
        pid = self.transport.pid
        if pid is None:
            return
        self._pids = [pid, *_descendants(pid)]
        _signal_all(self._pids, signal.SIGTERM)

    async def close(self, *, graceful: bool) -> None:
        """Let a finished run exit by itself; otherwise end the process tree, then reap it."""
        if not graceful:
            self.terminate()
        task = self._task
        try:
            if task is not None and not task.done():
                if graceful:
                    # The SDK closes stdin after the result; the CLI then exits by itself.
                    done, _ = await asyncio.wait({task}, timeout=10)
                    if not done:
                        self.terminate()
                task.cancel()
                await asyncio.wait({task}, timeout=10)
        except asyncio.CancelledError:
            _signal_all([pid for pid in self._pids if _alive(pid)], signal.SIGKILL)
            raise
        alive = [pid for pid in self._pids if _alive(pid)]
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            alive = [pid for pid in alive if _alive(pid)]
        _signal_all(alive, signal.SIGKILL)
