"""Gateways configured like a deployment (env vars and a YAML file), and a concurrent HTTP client to load them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.servers import EpServe, ep_env

MASTER = "acceptance-master-key-0123456789"
MODEL = "openai/gpt-4o-mini"
# $0.001 per token: the fake's default answer (12 in + 7 out) costs exactly $0.019; a request with the
# prompt "hi" (upper bound 10 tokens) and max_tokens 10 may cost at most $0.020 (its reservation).
CONFIG = "pricing:\n  openai/gpt-4o-mini: {input_per_mtok: 1000, output_per_mtok: 1000}\n"
COST, WORST = 0.019, 0.020
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def gateway_env(
    fake: Any, workdir: Path, database_url: str, redis_url: str | None = None, extra_config: str = ""
) -> dict[str, str]:
    config = workdir / "ep.yaml"
    config.write_text(CONFIG + extra_config)
    env = ep_env(workdir, keep_ep_vars=False, openai=fake)
    env.update(EP_DATABASE_URL=database_url, EP_MASTER_KEY=MASTER, EP_CONFIG=str(config))
    if redis_url:
        env["EP_REDIS_URL"] = redis_url
    return env


def start_all(gateways: list[EpServe]) -> list[EpServe]:
    for gw in gateways:
        gw.start()
    return [gw.wait_ready() for gw in gateways]


def create_key(gateway: EpServe, **fields: Any) -> str:
    return create_key_info(gateway, **fields)["key"]


def create_key_info(gateway: EpServe, **fields: Any) -> dict[str, Any]:
    r = httpx.post(gateway.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"}, json=fields)
    assert r.status_code == 201, r.text
    return r.json()


async def _post(session: aiohttp.ClientSession, url: str, key: str) -> Answer:
    try:
        async with session.post(url + "/v1/chat/completions", json=BODY,
                                headers={"authorization": f"Bearer {key}"}) as r:
            body = await r.json(content_type=None)
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, body)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return Answer(0, {}, repr(exc))


async def burst(urls: list[str], n: int, key: str) -> list[Answer]:
    """``n`` requests at once, spread round-robin over ``urls``."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(_post(session, urls[i % len(urls)], key) for i in range(n)))


def one_by_one_until_refused(urls: list[str], key: str, limit: int = 400) -> tuple[int, Answer]:
    """Send requests sequentially (round-robin) until one is refused; (admitted, the refusal)."""
    admitted = 0
    with httpx.Client(timeout=30) as http:
        for i in range(limit):
            r = http.post(urls[i % len(urls)] + "/v1/chat/completions", json=BODY,
                          headers={"authorization": f"Bearer {key}"})
            if r.status_code != 200:
                return admitted, Answer(r.status_code, dict(r.headers), r.json())
            admitted += 1
    raise AssertionError(f"still admitted after {limit} requests")
