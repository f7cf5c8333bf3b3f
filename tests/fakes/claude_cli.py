"""A scriptable stand-in for the Claude Code CLI, speaking the Agent SDK's stream-json protocol.

Run as a program (through ``ClaudeAgentOptions.cli_path``, see :func:`install`) it behaves like
``claude --output-format stream-json --input-format stream-json``: it answers the SDK's ``initialize``
control request, waits for the user message, then writes the frames of its script as NDJSON on stdout
(``system``/``init`` first) and exits when the SDK closes stdin. Imported, it offers builders for the
frames, so tests describe an agent run in a few lines.

Environment:

* ``FAKE_CLAUDE_SCRIPT`` — JSON file: ``{"frames": [...], "session_id", "model", "exit_code",
  "exit_before_init": {"code", "stderr"}}``. Frames are emitted as they are, with two directives:
  ``{"sleep": seconds}``, ``{"spawn": argv}`` (start a child process, as a tool would) and
  ``{"exit": code, "stderr": text}`` (crash on the spot). Without a script
  the fake echoes the prompt.
* ``FAKE_CLAUDE_RECORD`` — JSONL file where it records its argv, cwd, pid, environment and every
  stdin message, so tests can check what the SDK really sent.

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
from pathlib import Path
from typing import Any

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


# -- the program -------------------------------------------------------------------------------
class _FakeCLI:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        script_path = os.environ.get("FAKE_CLAUDE_SCRIPT")
        self.script: dict[str, Any] = json.loads(Path(script_path).read_text()) if script_path else {}
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
                fh.write(json.dumps(entry) + "\n")

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
        if frames is None:
            prompt = message["message"]["content"]
            prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)
            frames = [assistant(text(f"echo: {prompt}"), model=self.model), result(f"echo: {prompt}")]
        for frame in frames:
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
            if frame["type"] == "assistant" and self.partial and frame.get("parent_tool_use_id") is None:
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


def _stream_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Anthropic streaming events that produce ``message`` (as the CLI forwards them)."""
    start = {**message, "content": [], "stop_reason": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}}
                       for c in _chunks(block["text"])]
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
