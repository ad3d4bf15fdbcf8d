"""The dashboard's study panel lists a study the optimiser really ran, with its verdict and report,
and "Apply" makes its best parameters a new parameter version (a likely-overfit study only once
confirmed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from backtest.optimize import cli
from tests.browser.conftest import ApiProcess
from tests.browser.test_viewer import sign_in
from tests.optimize.conftest import write_slice
from tests.support.shared_data import SharedData

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def test_the_study_panel_lists_a_finished_study(api_process: ApiProcess, browser: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    candles = write_slice(SharedData().main_series(), tmp_path, 6000)
    reports = tmp_path / "var" / "optimize" / "reports"  # the api runs in tmp_path: its default folder
    argv = ["--data", str(candles), "--space", "EMA_SHORT_PERIOD=3:8", "--trials", "8", "--workers", "1"]
    argv += ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "panel", "--report-dir", str(reports)]
    assert cli.main([*argv, "--min-trades", "1", "--quiet"]) == 0
    document = json.loads((reports / "panel.json").read_text())

    owner = await sign_in(browser, api_process, "", api_process.password)
    row = owner.get_by_test_id("study-row")
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("study-verdict")).to_have_text(document["verdict"]["verdict"])
    await expect(row.get_by_test_id("study-pbo")).to_have_text(f"{document['overfitting']['pbo']:.2f}")
    best = document["best"]["params"]["EMA_SHORT_PERIOD"]
    await expect(row.get_by_test_id("study-params")).to_have_text(f"EMA_SHORT_PERIOD={best}")
    link = await row.get_by_test_id("study-report").get_attribute("href")
    assert link == "/api/studies/panel/report"
    cookies = {c["name"]: c["value"] for c in await owner.context.cookies()}
    async with httpx.AsyncClient(base_url=api_process.url, cookies=cookies) as client:
        page = await client.get(link)
        assert page.status_code == 200 and 'data-testid="verdict"' in page.text
        assert (await client.get("/api/studies/..%2Fs/report")).status_code == 404
        overfit = document["verdict"]["verdict"] == "likely overfit"
        if overfit:  # refused by the api itself without the confirmation
            refused = await client.post("/api/studies/panel/apply")
            assert refused.status_code == 409 and "likely overfit" in refused.json()["detail"]
            assert (await client.get("/api/parameters")).json()["version"] == 0
        await row.get_by_test_id("study-apply").click()
        await owner.locator("#confirm-ok").click()
        await expect(owner.get_by_test_id("study-message")).to_contain_text("parameter version 1")
        # Applied to the study's symbol (the row's choice), not to the shared set.
        current = (await client.get("/api/parameters", params={"symbol": "BTCUSDT"})).json()
        assert current["version"] == 1 and current["parameters"]["EMA_SHORT_PERIOD"] == best
        assert (await client.get("/api/parameters")).json()["version"] == 0
        history = (await client.get("/api/parameters/history", params={"symbol": "BTCUSDT"})).json()
        assert [c["field"] for c in history[0]["changes"]] == ["EMA_SHORT_PERIOD"]  # the default is 9
    assert not owner.errors, owner.errors
