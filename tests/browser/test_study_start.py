"""Starting a study from the dashboard: the form built from the strategy's parameter schema, its
errors per field, the study run by the optimiser on a real Dask scheduler and worker, its progress
and result in the list, and "Apply" of its best to a chosen symbol's set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ApiProcess
from tests.browser.test_viewer import sign_in
from tests.optimize.conftest import write_slice
from tests.support.dask_cluster import Cluster, dask_cluster
from tests.support.shared_data import SharedData

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    folder = tmp_path / "dask"
    folder.mkdir()
    with dask_cluster(folder, workers=1) as c:
        yield c


@pytest.fixture
def api_env(tmp_path: Path, cluster: Cluster) -> dict[str, str]:
    candles = write_slice(SharedData().main_series(), tmp_path, 6000)
    return {"BACKTEST_DATA": str(candles), "DASK_SCHEDULER_ADDRESS": cluster.address}


async def test_a_study_started_from_the_panel_runs_on_dask_and_applies_to_a_symbol(
    api_process: ApiProcess, browser: Any, tmp_path: Path, cluster: Cluster
) -> None:
    from playwright.async_api import expect

    owner = await sign_in(browser, api_process, "", api_process.password)
    form = owner.get_by_test_id("study-form")
    await expect(form).to_be_visible()
    await form.get_by_test_id("study-strategy").select_option("ema_cross_rsi")
    # Errors per field: no symbol with candles, a range outside the schema's bounds.
    await form.get_by_test_id("study-symbol-ETHUSDT").check()
    await form.get_by_test_id("study-search-EMA_SHORT_PERIOD").check()
    await form.get_by_test_id("study-low-EMA_SHORT_PERIOD").fill("3")
    await form.get_by_test_id("study-low-RSI_OVERSOLD").fill("-5")
    await form.get_by_test_id("study-high-RSI_OVERSOLD").fill("30")
    await form.get_by_test_id("study-search-RSI_OVERSOLD").check()
    await form.get_by_test_id("study-high-EMA_SHORT_PERIOD").fill("2")
    await form.get_by_test_id("study-trials").fill("8")
    await form.get_by_test_id("study-start").click()
    await expect(form.get_by_test_id("study-error-symbols")).to_contain_text("no candles")
    await expect(form.get_by_test_id("study-error-space.EMA_SHORT_PERIOD")).to_contain_text("below the high bound")
    await expect(form.get_by_test_id("study-error-space.RSI_OVERSOLD")).to_contain_text("lowest bound (0)")
    await expect(form.get_by_test_id("study-form-message")).to_contain_text("Not started")

    await form.get_by_test_id("study-symbol-ETHUSDT").uncheck()
    await form.get_by_test_id("study-symbol-BTCUSDT").check()
    await form.get_by_test_id("study-high-EMA_SHORT_PERIOD").fill("8")
    await form.get_by_test_id("study-search-RSI_OVERSOLD").uncheck()
    await form.get_by_test_id("study-start").click()
    await expect(form.get_by_test_id("study-form-message")).to_contain_text("started")
    progress = form.get_by_test_id("study-progress")
    await expect(progress).to_contain_text("finished", timeout=300_000)
    row = owner.get_by_test_id("study-row")
    await expect(row).to_have_count(1)

    cookies = {c["name"]: c["value"] for c in await owner.context.cookies()}
    async with httpx.AsyncClient(base_url=api_process.url, cookies=cookies) as client:
        run = (await client.get("/api/studies/run")).json()
        assert run["state"] == "finished" and run["done"] == 8
        document = json.loads((tmp_path / "var" / "optimize" / "reports" / f"{run['key']}.json").read_text())
        # The trials ran on the cluster's worker, not in the api's host.
        with cluster_client(cluster) as dask:
            assert set(document["study"]["workers"]) == set(dask.scheduler_info()["workers"])
        assert document["study"]["trials"] == 8 and document["best"]["decimal_rerun_agrees"] is True
        best = document["best"]["params"]["EMA_SHORT_PERIOD"]
        busy = await client.post("/api/studies", json={"symbols": ["BTCUSDT"], "space": {"NOPE": {}}})
        assert busy.status_code == 422 and busy.json()["detail"][0]["field"] == "space.NOPE"

        await row.get_by_test_id("study-apply-symbol").select_option("BTCUSDT")
        await row.get_by_test_id("study-apply").click()
        await owner.locator("#confirm-ok").click()
        message = owner.get_by_test_id("study-message")
        if document["verdict"]["verdict"] == "likely overfit" or best == 9:
            await expect(message).not_to_be_empty()
        else:
            await expect(message).to_contain_text("BTCUSDT's parameter version 1")
            await expect(owner.get_by_test_id("study-answer")).not_to_be_empty()  # waiting for the executor
            current = (await client.get("/api/parameters", params={"symbol": "BTCUSDT"})).json()
            assert current["version"] == 1 and current["parameters"]["EMA_SHORT_PERIOD"] == best
            assert (await client.get("/api/parameters")).json()["version"] == 0
    assert not owner.errors, owner.errors


def cluster_client(cluster: Cluster) -> Any:
    from distributed import Client

    return Client(cluster.address, timeout=30)
