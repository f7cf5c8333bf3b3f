"""The engine supervisor on a model file the engine cannot load: a clean error, then back-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from execution_platform.errors import UpstreamConnectionError
from execution_platform.providers.local_supervisor import EngineConfig, EngineSupervisor

pytestmark = [pytest.mark.local_model, pytest.mark.xdist_group("local_model")]


def test_a_broken_model_file_fails_cleanly_then_backs_off(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    sup = EngineSupervisor(EngineConfig(model=str(bad), idle_unload=0, start_timeout=60))
    try:
        with pytest.raises(UpstreamConnectionError, match="did not start"):
            sup.url()
        with pytest.raises(UpstreamConnectionError, match="did not start"):  # the first retry is immediate
            sup.url()
        with pytest.raises(UpstreamConnectionError, match="next start attempt in"):  # then it backs off
            sup.url()
        assert sup.pid is None
    finally:
        sup.stop()


def test_an_idle_engine_is_stopped_and_started_again_on_use() -> None:
    import time

    sup = EngineSupervisor(EngineConfig(idle_unload=1.0, parallel=1, ctx=512))
    try:
        first = sup.url()
        assert sup.pid is not None
        deadline = time.monotonic() + 60
        while sup.pid is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sup.pid is None  # unloaded after a second without requests
        assert sup.url() != first or sup.pid is not None  # and back on the next use
        assert sup.starts == 2
    finally:
        sup.stop()


def test_a_hung_engine_is_replaced_after_a_failed_health_check() -> None:
    import os
    import signal
    import time

    sup = EngineSupervisor(EngineConfig(idle_unload=0, parallel=1, ctx=512))
    try:
        sup.url()
        hung = sup.pid
        assert hung is not None and sup.check_health()
        # Alive but answering nothing, like a wedged native thread: the engine's whole process group
        # (it runs in its own session), and a moment for the stop to reach every thread.
        os.killpg(os.getpgid(hung), signal.SIGSTOP)
        time.sleep(0.3)
        assert sup.check_health(timeout=1.0) is False
        assert sup.pid is None  # killed, not left holding its memory
        sup.url()
        assert sup.pid not in (None, hung) and sup.check_health()
    finally:
        sup.stop()
