"""What the serving process leaves unloaded, and that leaving it so changes nothing for its users."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ep_env, ep_serve


def _run(code: str, tmp_path: Path) -> str:
    env_code = (
        "import os\n"
        f"os.environ['EP_DATABASE_URL'] = 'sqlite:///{tmp_path / 'ep.db'}'\n"
        "os.environ.pop('EP_CONFIG', None)\n" + code
    )
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_building_the_app_does_not_load_pydantic_1_and_routes_still_validate(tmp_path: Path) -> None:
    out = _run(
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from execution_platform.gateway.app import create_app\n"
        "app = create_app()\n"
        "with TestClient(app) as client:\n"
        "    bad = client.post('/admin/keys', json={'rpm': 0})\n"
        "    print(bad.status_code, 'pydantic.v1.main' in sys.modules)\n",
        tmp_path,
    )
    assert out == "400 False", out  # the body model still rejects rpm=0 (a 400, the gateway's error shape)


def test_code_that_uses_pydantic_1_gets_the_real_package_after_the_app_is_built(tmp_path: Path) -> None:
    out = _run(
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from fastapi._compat.shared import is_pydantic_v1_model_class\n"
        "from execution_platform.gateway.app import create_app\n"
        "create_app()\n"
        "from pydantic.v1 import BaseModel\n"
        "class Old(BaseModel):\n"
        "    x: int\n"
        "import pydantic.v1\n"
        "print(Old(x='3').x, pydantic.v1.BaseModel is BaseModel, is_pydantic_v1_model_class(Old))\n",
        tmp_path,
    )
    assert out == "3 True True", out


def test_prices_load_without_the_price_fetchers_http_client_which_still_works_when_used(tmp_path: Path) -> None:
    out = _run(
        "import sys\n"
        "from execution_platform.gateway.app import create_app\n"
        "create_app()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('httpx2.'))\n"
        "from genai_prices.update_prices import UpdatePrices\n"
        "timeout = UpdatePrices().request_timeout\n"
        "import httpx2\n"
        "print(loaded, type(timeout).__name__, isinstance(timeout, httpx2.Timeout))\n",
        tmp_path,
    )
    assert out == "[] Timeout True", out


def test_ep_serve_answers_without_mapping_the_file_watcher_or_re2(fake_openai: Any, tmp_path: Path) -> None:
    """One worker serves in the ``ep serve`` process itself: its libraries are what it maps."""
    with ep_serve(tmp_path, ep_env(tmp_path, openai=fake_openai)) as gateway:
        r = httpx.post(gateway.url + "/v1/chat/completions", timeout=10,
                       json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        assert gateway.proc is not None
        maps = Path(f"/proc/{gateway.proc.pid}/maps").read_text()
    assert "_pydantic_core" in maps  # the check reads the right process
    assert "watchfiles" not in maps
    assert "_re2" not in maps


def test_ep_serve_answers_chats_and_embeddings_without_mapping_aiohttp(fake_openai: Any, tmp_path: Path) -> None:
    """Chat and embeddings calls go through the httptools pool: aiohttp (and the TLS context it makes
    at import) stays out of a serving process that answers them, before and after the first call."""
    with ep_serve(tmp_path, ep_env(tmp_path, openai=fake_openai)) as gateway:
        assert gateway.proc is not None
        maps = Path(f"/proc/{gateway.proc.pid}/maps").read_text()
        chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        for path, body in (("/v1/chat/completions", chat), ("/v1/chat/completions", {**chat, "stream": True}),
                           ("/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "hi"})):
            r = httpx.post(gateway.url + path, json=body, timeout=10)
            assert r.status_code == 200, r.text
        maps += Path(f"/proc/{gateway.proc.pid}/maps").read_text()
    assert "_pydantic_core" in maps  # the check reads the right process
    assert "aiohttp" not in maps
    assert "frozenlist" not in maps


def test_a_gateway_on_sqlite_answers_without_the_postgresql_dialect(tmp_path: Path) -> None:
    """SQLAlchemy's PostgreSQL dialect is 2 MB resident: a partial index declared for it at import would
    load it into every embedded gateway. (``ep serve`` migrates in a child process first, as here, so
    alembic's own dialect imports stay out of the serving process.)"""
    _run(
        "from execution_platform.storage.engine import create_engine_from_url\n"
        "from execution_platform.storage.migrate import migrate\n"
        "migrate(create_engine_from_url(os.environ['EP_DATABASE_URL']))\n",
        tmp_path,
    )
    out = _run(
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from execution_platform.gateway.app import create_app\n"
        "with TestClient(create_app()) as client:\n"
        "    status = client.get('/costs').status_code\n"
        "print(status, sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))\n",
        tmp_path,
    )
    assert out == "200 []", out
