"""Schemathesis over the whole OpenAPI document, every phase (examples, coverage, fuzzing, stateful).

A fixed seed and a bounded number of examples per operation keep it reproducible and inside the suite's
budget. The gateway is the real app in front of the fakes; its tool registry holds one harmless tool
so ``/v1/tools/invoke`` is exercised for real without running commands on generated input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from execution_platform.tools.registry import ToolRegistry
from tests.fakes.base import FakeUpstream
from tests.gateway.server import GatewayServer, start_gateway

PHASES = "examples,coverage,fuzzing,stateful"
# Concurrent workers: each case mostly waits on loopback round trips, not on the CPU. Their threads
# parse source at once, which CPython 3.11 cannot do safely: the hooks file serializes ast.parse.
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SEED = 20261130
EXAMPLES = 8


def _echo_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.register
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return registry


@pytest.fixture
def fuzzed_gateway(fake_servers: dict[str, FakeUpstream], tmp_path: Path) -> Iterator[GatewayServer]:
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    for fake in fakes.values():
        fake.reset()
    server = start_gateway(fakes, {"workspace_root": tmp_path}, tools=_echo_registry())
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_phase_finds_no_server_error(fuzzed_gateway: GatewayServer, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", fuzzed_gateway.url + "/openapi.json",
        "--phases", PHASES, "--seed", str(SEED), "--max-examples", str(EXAMPLES),
        "--checks", "not_a_server_error", "--generation-database", "none", "--no-color",
        "--request-timeout", "20", "--workers", "4", "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path, env=env)
    output = run.stdout + run.stderr
    print(output[-3000:])
    assert run.returncode == 0, output[-6000:]
    assert "Server error" not in output and "Network Error" not in output
    assert "Runtime Error" not in output and "SystemError" not in output
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output or f"✅  {phase}" in output, phase
    # The published request schemas say what the codecs accept: generated valid requests are served.
    assert "Schema validation mismatch" not in output, output[-4000:]
    assert "Missing test data" not in output, output[-4000:]
