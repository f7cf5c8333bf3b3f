"""The ``/ui`` dashboard: its JSON document, and the page itself in a real headless Chromium.

The ledger is seeded with known rows; the page must show their totals, restack them when the grouping
changes, show a virtual key only its own spend, and log no console error. Screenshots are saved in
the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from execution_platform.money.ledger import Ledger, LedgerRow

from .conftest import MASTER


def _today() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, hour=12, minute=0, second=0, microsecond=0)


def _seed(gw: Any, key_id: str) -> list[LedgerRow]:
    """Known rows over the last days: two personas, two providers, some paid by the virtual key."""
    today = _today()
    spec = [  # days ago, persona, provider, model, key, cost
        (0, "coder", "openai", "gpt-4o-mini", key_id, 1.25),
        (0, "writer", "anthropic", "claude-sonnet-4-5", None, 2.00),
        (1, "coder", "openai", "gpt-4o-mini", None, 0.50),
        (2, "coder", "anthropic", "claude-sonnet-4-5", key_id, 0.75),
        (3, "writer", "openai", "gpt-4o", None, 3.00),
        (5, "writer", "anthropic", "claude-sonnet-4-5", key_id, 1.50),
    ]
    rows = [LedgerRow(request_id=f"seed-{i}", provider=provider, model=model, status="ok", persona=persona,
                      key_id=key, session_id=f"s{i % 2}", ts=today - timedelta(days=ago), cost_usd=cost,
                      input_tokens=100, output_tokens=10)
            for i, (ago, persona, provider, model, key, cost) in enumerate(spec)]
    engine = gw.gateway.client.meter.ledger.engine

    async def write() -> None:  # a writer of its own on the gateway's database (the server's runs elsewhere)
        async with Ledger(engine) as ledger:
            for row in rows:
                await ledger.record(row)

    asyncio.run(write())
    return rows


def _totals(rows: list[LedgerRow], attr: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        out[getattr(row, attr)] = out.get(getattr(row, attr), 0.0) + row.cost_usd
    return out


@pytest.fixture
def seeded(make_gateway: Any) -> tuple[Any, str, str, list[LedgerRow]]:
    gw = make_gateway({"master_key": MASTER})
    created = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"},
                         json={"name": "dash", "budget_usd": 10.0, "budget_period": "month"}).json()
    rows = _seed(gw, created["id"])
    return gw, created["key"], created["id"], rows


def test_overview_document_is_scoped_to_the_key(seeded: Any) -> None:
    gw, key, key_id, rows = seeded
    everything = httpx.get(gw.url + "/ui/api/overview?group=persona",
                           headers={"authorization": f"Bearer {MASTER}"}).json()
    assert everything["scope"] == "all"
    assert everything["totals"]["total_usd"] == pytest.approx(sum(r.cost_usd for r in rows))
    by_persona: dict[str, float] = {}
    for point in everything["series"]:
        by_persona[point["group"]] = by_persona.get(point["group"], 0.0) + point["cost_usd"]
    assert by_persona == pytest.approx(_totals(rows, "persona"))
    assert {g["group"] for g in everything["top"]["key"]} == {key_id, None}
    assert "live" in everything and "providers" in everything
    own = httpx.get(gw.url + "/ui/api/overview?group=provider", headers={"authorization": f"Bearer {key}"}).json()
    mine = [r for r in rows if r.key_id == key_id]
    assert own["scope"] == "key" and own["key_id"] == key_id
    assert own["totals"]["total_usd"] == pytest.approx(sum(r.cost_usd for r in mine))
    assert {r["request_id"] for r in own["recent"]} == {r.request_id for r in mine}
    assert "live" not in own and "key" not in own["top"]
    assert [b["name"] for b in own["budgets"]] == [key_id]
    assert own["budgets"][0]["limit_usd"] == 10.0
    assert httpx.get(gw.url + "/ui/api/overview").status_code == 401
    page = httpx.get(gw.url + "/ui")
    assert page.status_code == 200 and "/ui/static/app.js" in page.text  # the page itself needs no key
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            real = Path("/usr/lib/chromium/chromium")
            return str(real) if name == "chromium" and real.exists() else found
    return None


@pytest.mark.skipif(_chromium() is None, reason="Debian chromium not installed (scripts/run_validation.sh installs it)")
def test_dashboard_in_headless_chromium(seeded: Any, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    gw, key, key_id, rows = seeded
    problems: list[str] = []
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            def loaded(after: int) -> None:
                page.wait_for_function(f"Number(document.getElementById('status').dataset.loads) > {after}",
                                       timeout=15000)

            def legend() -> dict[str, float]:
                return {item.get_attribute("data-group"): float(item.get_attribute("data-usd"))
                        for item in page.query_selector_all("#legend li")}

            page.goto(gw.url + "/ui")
            page.fill("#key", MASTER)
            page.click("#login button[type=submit]")
            loaded(0)
            total = sum(r.cost_usd for r in rows)
            assert float(page.get_attribute("#chart", "data-total-usd")) == pytest.approx(total)
            assert float(page.get_attribute("#total-spend", "data-usd")) == pytest.approx(total)
            assert legend() == pytest.approx(_totals(rows, "persona"))
            assert len(page.query_selector_all("#chart rect.seg")) == 6  # one segment per day and persona here
            assert page.is_visible("#live") and page.is_visible("#top-key")
            page.screenshot(path=str(shots / "master-persona.png"), full_page=True)

            page.select_option("#group", "provider")
            loaded(1)
            assert legend() == pytest.approx(_totals(rows, "provider"))
            page.select_option("#group", "model")
            loaded(2)
            assert legend() == pytest.approx(_totals(rows, "model"))
            page.screenshot(path=str(shots / "master-model.png"), full_page=True)

            page.click("#logout")
            page.wait_for_load_state()
            page.fill("#key", key)
            page.click("#login button[type=submit]")
            loaded(0)
            mine = [r for r in rows if r.key_id == key_id]
            assert float(page.get_attribute("#chart", "data-total-usd")) == pytest.approx(sum(r.cost_usd for r in mine))
            assert legend() == pytest.approx(_totals(mine, "persona"))
            assert not page.is_visible("#top-key-card") and not page.is_visible("#admin-only")
            assert len(page.query_selector_all("#recent tbody tr")) == len(mine)
            assert page.inner_text("#scope") == f"spend of key {key_id}"
            page.screenshot(path=str(shots / "virtual-key.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert sorted(path.name for path in shots.iterdir()) == ["master-model.png", "master-persona.png",
                                                            "virtual-key.png"]
    print(f"screenshots: {shots}")


def test_ep_top_prints_the_dashboard_numbers(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from execution_platform.cli import app as cli_app

    gw, key, key_id, _ = seeded
    monkeypatch.setenv("COLUMNS", "160")
    everything = CliRunner().invoke(cli_app, ["top", "--url", gw.url, "--key", MASTER, "--once"])
    assert everything.exit_code == 0, everything.output
    assert "all spend" in everything.output and "$9.0000" in everything.output  # 6 rows, $9 in all
    assert "writer" in everything.output and "req/s" in everything.output
    own = CliRunner().invoke(cli_app, ["top", "--url", gw.url, "--key", key, "--once", "--group", "provider"])
    assert f"key {key_id}" in own.output and "$3.5000" in own.output and "req/s" not in own.output
    refused = CliRunner().invoke(cli_app, ["top", "--url", gw.url, "--key", "not-a-key-123456789", "--once"])
    assert "HTTP 401" in refused.output
