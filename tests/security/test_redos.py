"""Catastrophic-backtracking patterns against the running gateway: the tool answers at once, /health stays fast.

With a backtracking engine ``(a+)+$`` on 25 ``a`` and a ``!`` takes seconds while holding the GIL, so
the whole gateway (every request, every stream) stops; the tool timeout cannot interrupt it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from execution_platform.tools import ToolRegistry
from execution_platform.tools.builtins import builtin_tools
from execution_platform.tools.sandbox import Workspace
from tests.fakes.base import FakeUpstream
from tests.gateway.server import GatewayServer, start_gateway


@pytest.fixture
def served(fake_servers: dict[str, FakeUpstream], tmp_path: Path) -> Iterator[tuple[GatewayServer, Workspace]]:
    ws = Workspace(tmp_path / "workspace")
    (ws.root / "evil.txt").write_text("a" * 25 + "!\n")
    (ws.root / ("a" * 30)).write_text("x\n")
    fakes = {name: fake_servers[name] for name in ("openai", "anthropic", "gemini")}
    server = start_gateway(fakes, {"workspace_root": ws.root}, tools=ToolRegistry(builtin_tools(ws)))
    try:
        yield server, ws
    finally:
        server.stop()


def _worst_health_latency(url: str, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            worst[0] = max(worst[0], time.perf_counter() - started)
            time.sleep(0.01)


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("search", {"query": "(a+)+$", "regex": True}),
        ("search", {"query": "x", "glob": "*a*a*a*a*a*a*a*a*a*a*a*b"}),
        ("glob", {"pattern": "*a*a*a*a*a*a*a*a*a*a*a*b"}),
    ],
    ids=["regex", "search-glob", "glob"],
)
def test_pathological_patterns_neither_hang_the_tool_nor_the_gateway(
    served: tuple[GatewayServer, Workspace], tool: str, args: dict[str, object]
) -> None:
    server, _ = served
    stop, worst = threading.Event(), [0.0]
    poller = threading.Thread(target=_worst_health_latency, args=(server.url, stop, worst))
    poller.start()
    try:
        time.sleep(0.1)
        started = time.perf_counter()
        response = httpx.post(server.url + "/v1/tools/invoke", json={"name": tool, "args": args}, timeout=120)
        took = time.perf_counter() - started
        time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
    print(f"{tool} {args}: call {took:.3f}s, worst concurrent /health {worst[0]:.3f}s")
    assert response.status_code == 200, response.text
    assert took < 2.0
    assert worst[0] < 0.5


def test_patterns_re2_cannot_run_in_linear_time_are_a_clear_400(served: tuple[GatewayServer, Workspace]) -> None:
    server, _ = served
    for query in (r"(a)\1", r"a(?=b)", r"(?<!x)a"):
        response = httpx.post(
            server.url + "/v1/tools/invoke", json={"name": "search", "args": {"query": query, "regex": True}}
        )
        assert response.status_code == 400, (query, response.text)
        message = response.json()["error"]["message"]
        assert "invalid regular expression" in message and "RE2" in message, message


def test_linear_regex_search_still_finds_matches(served: tuple[GatewayServer, Workspace]) -> None:
    server, _ = served
    response = httpx.post(
        server.url + "/v1/tools/invoke",
        json={"name": "search", "args": {"query": "A+!$", "regex": True, "ignore_case": True}},
    )
    assert response.status_code == 200
    assert response.json()["result"]["matches"] == [{"path": "evil.txt", "line": 1, "text": "a" * 25 + "!"}]
