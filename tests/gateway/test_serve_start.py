"""What ``ep serve`` does before it serves: the schema upgrade kept out of the serving process, and
the warning that several workers without Redis enforce budgets and limits each on their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ep_env, ep_serve

MODEL = "openai/gpt-4o-mini"


def test_the_schema_is_upgraded_in_a_child_so_alembic_never_loads_in_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys\n"
        "from execution_platform.cli.serve import migrate_aside\n"
        f"migrate_aside({url!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"

    from execution_platform.storage import create_engine_from_url
    from execution_platform.storage.migrate import is_current

    assert is_current(create_engine_from_url(url))


def test_two_workers_without_redis_warn_that_limits_are_per_worker(fake_openai: Any, tmp_path: Path) -> None:
    env = ep_env(tmp_path, openai=fake_openai)
    env.pop("EP_REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with ep_serve(tmp_path, env, "--workers", "2") as gateway:
        r = httpx.post(gateway.url + "/v1/chat/completions", timeout=10,
                       json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        assert "without EP_REDIS_URL" in gateway.output()
        assert "exact per worker" in gateway.output()
