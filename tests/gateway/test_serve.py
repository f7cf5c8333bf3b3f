"""``ep serve`` as a real process (uvloop + httptools, factory per worker), configured from a YAML file."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fakes import Reply
from tests.servers import ep_env, ep_serve


def test_ep_serve_process(fake_openai, tmp_path: Path) -> None:
    config = tmp_path / "ep.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: fast-a, model_name: fast, provider: openai, model: gpt-4o-mini}\n"
        "server: {max_body_bytes: 2048}\n"
    )
    with ep_serve(tmp_path, ep_env(tmp_path, openai=fake_openai), "--config", str(config)) as served:
        url = served.url
        health = httpx.get(url + "/health", timeout=10)
        assert health.json()["providers"]["openai"]["configured"] is True
        assert "fast" in [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
        fake_openai.enqueue(Reply(text="served by ep serve"))
        r = httpx.post(url + "/v1/chat/completions",
                       json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert r.json()["choices"][0]["message"]["content"] == "served by ep serve"
        big = httpx.post(url + "/v1/chat/completions",
                         json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 4000}]})
        assert big.status_code == 413
