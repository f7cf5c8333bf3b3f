"""A scriptable stand-in for the Claude Code CLI, speaking the Agent SDK's stream-json protocol.

Run as a program (through ``ClaudeAgentOptions.cli_path``, see :func:`install`) it behaves like
``claude --output-format stream-json --input-format stream-json``: it answers the SDK's ``initialize``
control request, waits for the user message, then writes the frames of its script as NDJSON on stdout
(``system``/``init`` first) and exits when the SDK closes stdin. Imported, it offers builders for the
frames, so tests describe an agent run in a few lines.

Environment:

* ``FAKE_CLAUDE_SCRIPT`` — JSON file: ``{"frames": [...], "session_id", "model", "exit_code",
  "exit_before_init": {"code", "stderr"}}``. Frames are emitted as they are, with these directives:
  ``{"sleep": seconds}``, ``{"spawn": argv}`` (start a child process, as a tool would),
  ``{"exit": code, "stderr": text}`` (crash on the spot), ``{"line": text}`` (write a raw stdout
  line), ``{"if_partial": frame}`` (only with partial messages on), ``{"as_is": frame}`` (never
  expanded into stream events) and ``{"echo": reply options}`` (answer with the prompt, see
  :func:`reply_frames`). Without a script the fake echoes the prompt.
* ``FAKE_CLAUDE_QUEUE`` — directory of scripts; each run claims the first one (by name) and removes
  it, so one test can script several runs in order. An empty queue falls back to the above.
* ``FAKE_CLAUDE_RECORD`` — JSONL file where it records its argv, cwd, pid, environment and every
  stdin message (each entry tagged with ``cli_pid``), so tests can check what the SDK really sent.

:class:`FakeClaudeCLI` gives the CLI the scripting surface of the HTTP fakes: ``enqueue`` of the
neutral :class:`~tests.fakes.script.Reply`/:class:`~tests.fakes.script.Fault` vocabulary, a record
of what each run received and a check that the runs' processes are gone.

With ``--include-partial-messages`` each top-level assistant frame is preceded by the Anthropic
stream events (``stream_event`` frames) that the real CLI forwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .script import Fault, Reply

VERSION = "2.1.330"
_RECORDED_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "EP_", "OPENAI_", "GEMINI_", "GOOGLE_", "DISABLE_")


# -- builders used by tests ----------------------------------------------------------------------
def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def thinking(value: str, signature: str = "sig-fake") -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": signature}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def assistant(
    *blocks: dict[str, Any],
    message_id: str | None = None,
    model: str = "claude-sonnet-4-5-20250929",
    stop_reason: str | None = None,
    parent: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "assistant",
        "message": {
            "id": message_id or f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": list(blocks),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
        "parent_tool_use_id": parent,
        "uuid": str(uuid.uuid4()),
    }
    if error:
        frame["error"] = error
    return frame


def tool_result(call_id: str, content: str | list[dict[str, Any]], *, is_error: bool = False,
                parent: str | None = None) -> dict[str, Any]:
    return {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error}],
        },
        "parent_tool_use_id": parent,
        "uuid": str(uuid.uuid4()),
    }


def result(
    value: str | None = "",
    *,
    cost: float | None = 0.0123,
    input_tokens: int = 120,
    output_tokens: int = 45,
    cache_read: int = 0,
    cache_write: int = 0,
    is_error: bool = False,
    subtype: str = "success",
    num_turns: int = 1,
    stop_reason: str | None = "end_turn",
    api_error_status: int | None = None,
    errors: list[str] | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "duration_ms": 1234,
        "duration_api_ms": 1000,
        "num_turns": num_turns,
        "result": value,
        "stop_reason": stop_reason,
        "total_cost_usd": cost,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
        "permission_denials": [],
        "uuid": str(uuid.uuid4()),
    }
    if api_error_status is not None:
        frame["api_error_status"] = api_error_status
    if errors is not None:
        frame["errors"] = errors
    return frame


def sleep(seconds: float) -> dict[str, Any]:
    return {"sleep": seconds}


def spawn(*argv: str) -> dict[str, Any]:
    """Start a child process (as a Bash tool would) and record its pid."""
    return {"spawn": list(argv)}


def crash(code: int = 1, stderr: str = "") -> dict[str, Any]:
    return {"exit": code, "stderr": stderr}


def write_script(path: Path, frames: list[dict[str, Any]] | None = None, **options: Any) -> Path:
    path.write_text(json.dumps({"frames": frames, **options}))
    return path


def install(directory: Path) -> Path:
    """Write an executable ``claude`` launcher for this fake (running under this interpreter)."""
    launcher = directory / "claude"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


def read_record(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reply_frames(
    answer: str | None,
    *,
    chunks: int = 3,
    thinking_text: str | None = None,
    signature: str | None = None,
    input_tokens: int = 12,
    output_tokens: int = 7,
    cached_input_tokens: int = 0,
    stop_reason: str = "end_turn",
    cost: float | None = None,
    model: str = "claude-sonnet-4-5-20250929",
) -> list[dict[str, Any]]:
    """One model turn as the CLI reports it: its stream events, the assistant frame, the run's result.

    The stream events are written out here (``chunks`` text deltas) instead of being derived from the
    assistant frame, so a fault can cut the turn after any delta. ``input_tokens`` counts cached input
    too, as the canonical usage does; the result frame reports the cached part separately.
    """
    blocks = [thinking(thinking_text, signature or "sig-fake")] if thinking_text else []
    if answer:
        blocks.append(text(answer))
    frame = assistant(*blocks, model=model, stop_reason=stop_reason)
    events = [
        {"if_partial": {"type": "stream_event", "uuid": str(uuid.uuid4()), "event": event, "parent_tool_use_id": None}}
        for event in _stream_events(frame["message"], chunks)
    ]
    done = result(answer or "", cost=cost, input_tokens=input_tokens - cached_input_tokens,
                  output_tokens=output_tokens, cache_read=cached_input_tokens, stop_reason=stop_reason)
    return [*events, {"as_is": frame}, done]


def _is_text_delta(frame: dict[str, Any]) -> bool:
    event = frame.get("if_partial", {}).get("event", {})
    return event.get("type") == "content_block_delta" and event.get("delta", {}).get("type") == "text_delta"


def _cut(frames: list[dict[str, Any]], after_chunks: int) -> int:
    """Where a fault strikes: after ``after_chunks`` text deltas, and always before the assistant frame."""
    limit = next(i for i, f in enumerate(frames) if "as_is" in f)
    if after_chunks <= 0:
        return 0
    seen = 0
    for index, frame in enumerate(frames[:limit]):
        seen += _is_text_delta(frame)
        if seen == after_chunks:
            return index + 1
    return limit


def _claim_queued_script() -> dict[str, Any] | None:
    """Take the first script of ``FAKE_CLAUDE_QUEUE`` (rename first, so two runs never share one)."""
    queue = os.environ.get("FAKE_CLAUDE_QUEUE")
    if not queue:
        return None
    for path in sorted(Path(queue).glob("*.json")):
        claimed = path.with_suffix(f".taken-{os.getpid()}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue
        return json.loads(claimed.read_text())
    return None


def _load_script(path: str | None) -> dict[str, Any]:
    return json.loads(Path(path).read_text()) if path else {}


# -- the adapter the provider-neutral tests use ----------------------------------------------------
_STOP = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal", "tool_calls": "tool_use"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}


def _assistant_error_kind(status: int) -> str:
    """The ``error`` tag Claude Code puts on the synthetic assistant message of a failed API call."""
    kinds = {400: "invalid_request", 401: "authentication_failed", 402: "billing_error", 429: "rate_limit"}
    return kinds.get(status, "server_error" if status >= 500 else "unknown")


@dataclass
class CLIRun:
    """What one CLI run received: its command line, environment and the messages on its stdin."""

    pid: int
    argv: list[str]
    cwd: str
    env: dict[str, str]
    stdin: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, name: str) -> str | None:
        if name in self.argv:
            index = self.argv.index(name)
            return self.argv[index + 1] if index + 1 < len(self.argv) else None
        return None

    @property
    def prompts(self) -> list[str]:
        return [m["message"]["content"] for m in self.stdin if m.get("type") == "user"]


class FakeClaudeCLI:
    """The fake CLI behind the same scripting surface as the HTTP fakes.

    Each enqueued script is written to the queue directory and consumed by exactly one CLI run;
    the provider under test must be given :attr:`cli_path` and :attr:`env`.
    """

    provider = "claude_agent"

    def __init__(self, directory: Path, *, price_in: float = 3e-6, price_out: float = 15e-6) -> None:
        self.directory = directory
        self.queue = directory / "queue"
        self.queue.mkdir(parents=True, exist_ok=True)
        self.record_path = directory / "record.jsonl"
        self.cli_path = install(directory)
        self.price_in, self.price_out = price_in, price_out
        self._enqueued = 0

    @property
    def env(self) -> dict[str, str]:
        return {"FAKE_CLAUDE_QUEUE": str(self.queue), "FAKE_CLAUDE_RECORD": str(self.record_path)}

    # -- scripting ------------------------------------------------------------------------------
    def enqueue(self, *scripts: Reply | Fault) -> None:
        for script in scripts:
            self._enqueued += 1
            path = self.queue / f"{self._enqueued:06d}.json"
            path.write_text(json.dumps({"frames": self.render(script)}))

    def reported_cost(self, reply: Reply) -> float:
        """The ``total_cost_usd`` the fake reports for ``reply``: a fixed price per token."""
        return round(reply.input_tokens * self.price_in + reply.output_tokens * self.price_out, 10)

    def render(self, script: Reply | Fault) -> list[dict[str, Any]]:
        from .script import Fault, Reply

        if isinstance(script, Reply):
            return self._reply(script)
        assert isinstance(script, Fault)
        if script.kind == "status":
            return self._api_error(script)
        body = self._reply(script.then or Reply())
        cut = _cut(body, script.after_chunks)
        if script.kind == "slow_first_byte":
            return [sleep(script.delay), *body]
        if script.kind == "stall":
            return [*body[:cut], sleep(script.delay), *body[cut:]]
        if script.kind == "disconnect":
            return [*body[:cut], crash(1, "Error: the CLI lost its connection and stopped\n")]
        if script.kind == "malformed_json":
            return [{"line": '{"type": "assistant", "message": {"content": [{"type": "te'}, *body]
        if script.kind == "stream_error":
            return [*body[:cut], *self._api_error(script)]
        raise ValueError(f"no Claude Code rendering for fault {script.kind!r}")

    def _reply(self, reply: Reply) -> list[dict[str, Any]]:
        if reply.tool_calls:
            raise ValueError("Claude Code runs its own tools; it never hands client tool calls back")
        options: dict[str, Any] = {
            "chunks": reply.chunks, "thinking_text": reply.thinking, "signature": reply.thinking_signature,
            "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
            "cached_input_tokens": reply.cached_input_tokens, "stop_reason": _STOP[reply.finish_reason],
            "cost": self.reported_cost(reply),
        }
        if reply.model:
            options["model"] = reply.model
        if reply.echo:
            return [{"echo": options}]
        return reply_frames(reply.text, **options)

    @staticmethod
    def _api_error(fault: Fault) -> list[dict[str, Any]]:
        """A failed API call as Claude Code reports it: a synthetic assistant message, then an error result."""
        kind = fault.error_type or _ERROR_TYPES.get(fault.status, "api_error")
        message = f"API Error: {fault.status} " + json.dumps(
            {"type": "error", "error": {"type": kind, "message": fault.message}})
        note = assistant(text(message), model="<synthetic>", stop_reason="stop_sequence",
                         error=_assistant_error_kind(fault.status))
        return [{"as_is": note}, result(message, is_error=True, cost=0.0, input_tokens=0, output_tokens=0,
                                        stop_reason="stop_sequence", api_error_status=fault.status)]

    # -- what the CLI received ------------------------------------------------------------------
    @property
    def requests(self) -> list[CLIRun]:
        """Every run so far, in start order."""
        runs: dict[int, CLIRun] = {}
        for entry in read_record(self.record_path):
            pid = entry.get("cli_pid")
            if entry["event"] == "start":
                runs[pid] = CLIRun(pid=pid, argv=entry["argv"], cwd=entry["cwd"], env=entry["env"])
            elif entry["event"] == "stdin" and pid in runs:
                runs[pid].stdin.append(entry["message"])
        return list(runs.values())

    def wait_runs_gone(self, baseline: int, timeout: float = 2.0) -> bool:
        """True once at least one run started after ``baseline`` runs, and every such run has exited."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.requests[baseline:]
            if runs and not any(_running(run.pid) for run in runs):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie (exited, waiting to be reaped) does not."""
    try:
        os.kill(pid, 0)
        return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True


# -- the program -------------------------------------------------------------------------------
class _FakeCLI:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.script: dict[str, Any] = _claim_queued_script() or _load_script(os.environ.get("FAKE_CLAUDE_SCRIPT"))
        self.record_path = os.environ.get("FAKE_CLAUDE_RECORD")
        resume = next((a.split("=", 1)[1] for a in argv if a.startswith("--resume=")), None)
        self.session_id = self.script.get("session_id") or resume or str(uuid.uuid4())
        self.model = self.script.get("model") or self._flag("--model") or "claude-sonnet-4-5-20250929"
        self.partial = "--include-partial-messages" in argv
        self.last_result: dict[str, Any] | None = None

    def _flag(self, name: str) -> str | None:
        if name in self.argv:
            index = self.argv.index(name)
            return self.argv[index + 1] if index + 1 < len(self.argv) else None
        return None

    def record(self, entry: dict[str, Any]) -> None:
        if self.record_path:
            with open(self.record_path, "a") as fh:
                fh.write(json.dumps({**entry, "cli_pid": os.getpid()}) + "\n")

    @staticmethod
    def emit(frame: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(frame) + "\n")
        sys.stdout.flush()

    def run(self) -> int:
        env = {k: v for k, v in os.environ.items() if k.startswith(_RECORDED_ENV_PREFIXES)}
        self.record({"event": "start", "argv": self.argv, "cwd": os.getcwd(), "pid": os.getpid(), "env": env})
        early = self.script.get("exit_before_init")
        if early:
            sys.stderr.write(early.get("stderr", ""))
            return int(early.get("code", 1))
        for line in sys.stdin:
            if not line.strip():
                continue
            message = json.loads(line)
            self.record({"event": "stdin", "message": message})
            kind = message.get("type")
            if kind == "control_request":
                self.emit({
                    "type": "control_response",
                    "response": {"subtype": "success", "request_id": message["request_id"],
                                 "response": {"commands": [], "models": [], "account": {}}},
                })
            elif kind == "user":
                code = self.answer(message)
                if code is not None:
                    return code
        default = 1 if self.last_result and self.last_result.get("is_error") else 0
        return int(self.script.get("exit_code", default))

    def answer(self, message: dict[str, Any]) -> int | None:
        self.emit({
            "type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": self.session_id,
            "tools": ["Bash", "Read", "Write"], "mcp_servers": [], "model": self.model,
            "permissionMode": self._flag("--permission-mode") or "default", "slash_commands": [],
            "apiKeySource": "none", "claude_code_version": VERSION, "output_style": "default",
            "agents": [], "skills": [], "plugins": [], "uuid": str(uuid.uuid4()),
        })
        frames = self.script.get("frames")
        prompt = message["message"]["content"]
        prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)
        if frames is None:
            frames = [assistant(text(f"echo: {prompt}"), model=self.model), result(f"echo: {prompt}")]
        frames = [f for frame in frames
                  for f in (reply_frames(prompt, **frame["echo"]) if "echo" in frame else [frame])]
        for frame in frames:
            expand = self.partial
            if "if_partial" in frame:
                if not self.partial:
                    continue
                frame, expand = frame["if_partial"], False
            elif "as_is" in frame:
                frame, expand = frame["as_is"], False
            if "line" in frame:
                sys.stdout.write(frame["line"] + "\n")
                sys.stdout.flush()
                continue
            if "sleep" in frame:
                time.sleep(float(frame["sleep"]))
                continue
            if "spawn" in frame:
                child = subprocess.Popen(frame["spawn"])
                self.record({"event": "spawn", "pid": child.pid})
                continue
            if "exit" in frame:
                sys.stderr.write(frame.get("stderr", ""))
                sys.stderr.flush()
                return int(frame["exit"])
            frame = {**frame, "session_id": self.session_id}
            if frame["type"] == "assistant" and expand and frame.get("parent_tool_use_id") is None:
                for event in _stream_events(frame["message"]):
                    self.emit({"type": "stream_event", "uuid": str(uuid.uuid4()), "session_id": self.session_id,
                               "event": event, "parent_tool_use_id": None})
            if frame["type"] == "result":
                self.last_result = frame
            self.emit(frame)
        return None


def _chunks(value: str, count: int = 3) -> list[str]:
    size = max(1, -(-len(value) // count))
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _stream_events(message: dict[str, Any], chunks: int = 3) -> list[dict[str, Any]]:
    """The Anthropic streaming events that produce ``message`` (as the CLI forwards them)."""
    start = {**message, "content": [], "stop_reason": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}}
                       for c in _chunks(block["text"], chunks)]
        elif block["type"] == "thinking":
            events.append({"type": "content_block_start", "index": index,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": c}}
                       for c in _chunks(block["thinking"])]
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": block["signature"]}})
        elif block["type"] == "tool_use":
            events.append({"type": "content_block_start", "index": index,
                           "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        else:
            continue
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": message.get("stop_reason") or "end_turn"},
                   "usage": {"output_tokens": 5}})
    events.append({"type": "message_stop"})
    return events


if __name__ == "__main__":
    sys.exit(_FakeCLI(sys.argv[1:]).run())
