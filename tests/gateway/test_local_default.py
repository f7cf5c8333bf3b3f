"""With a provider key configured, a request without a model is still an error: cloud stays explicit."""

from __future__ import annotations

import httpx


def test_no_model_with_a_key_configured_is_a_400_not_the_local_model(gateway) -> None:
    resp = httpx.post(gateway.url + "/v1/chat/completions",
                      json={"messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "model"
