"""Backtests started from the dashboard run the real CLI on the current parameters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.api.app import create_app
from services.api.backtests import params_argument
from services.api.config import ApiSettings
from shared.parameters import StrategyParameters, validate_parameters
from tests.api.helpers import PASSWORD


async def wait_finished(client: httpx.AsyncClient, timeout: float = 90) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        body = (await client.get("/api/backtest/latest")).json()
        if body["run"]["state"] != "running":
            return body
        await asyncio.sleep(0.2)
    raise AssertionError("backtest did not finish")


async def test_a_backtest_of_the_current_parameters_produces_a_linked_report(client: httpx.AsyncClient) -> None:
    idle = (await client.get("/api/backtest/latest")).json()
    assert idle["run"] == {"state": "idle"} and idle["report"] is None
    assert idle["data"].startswith("BTCUSDT_1m")
    assert (await client.get("/api/backtest/report")).status_code == 404

    started = await client.post("/api/backtest")
    assert started.status_code == 202 and started.json()["run"]["state"] == "running"
    assert (await client.post("/api/backtest")).status_code == 409
    body = await wait_finished(client)
    assert body["run"]["state"] == "finished", body["run"]
    report = body["report"]
    assert report["url"] == "/api/backtest/report" and len(report["key"]) == 16
    assert report["summary"]["candles"] == 10080 and "total_return_pct" in report["summary"]
    page = await client.get(report["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


async def test_a_failing_backtest_reports_its_error(
    settings_factory: Callable[..., ApiSettings], tmp_path: Path
) -> None:
    app: FastAPI = create_app(settings_factory(BACKTEST_DATA=str(tmp_path / "BTCUSDT_1m_missing.csv.gz")))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            await client.post("/api/login", json={"password": PASSWORD})
            assert (await client.post("/api/backtest")).status_code == 202
            body = await wait_finished(client)
    assert body["run"]["state"] == "failed" and body["run"]["exit_code"] == 2
    assert "no such file" in body["run"]["error"] and body["report"] is None


async def test_the_backtest_runs_the_configured_strategy(settings_factory: Callable[..., ApiSettings]) -> None:
    app: FastAPI = create_app(settings_factory(STRATEGY="donchian_breakout", STRATEGY_PARAMS="ENTRY_PERIOD=30"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            await client.post("/api/login", json={"password": PASSWORD})
            assert (await client.post("/api/backtest")).status_code == 202
            body = await wait_finished(client)
            assert body["run"]["state"] == "finished", body["run"]
            assert body["report"]["summary"]["strategy"] == "donchian_breakout"
            page = (await client.get(body["report"]["url"])).text
    assert "ENTRY_PERIOD" in page and "<td>30</td>" in page


def test_the_params_argument_reads_back_as_the_same_set() -> None:
    parameters = StrategyParameters(USE_EMA_FILTER=False, STOP_LOSS_PERCENTAGE="0.015", RSI_OVERBOUGHT=70.5)
    text = params_argument(parameters)
    assert "USE_EMA_FILTER=false" in text and "STOP_LOSS_PERCENTAGE=0.015" in text
    values = dict(pair.split("=") for pair in text.split(" "))
    assert validate_parameters(values) == parameters


async def test_changing_parameters_points_at_another_report(client: httpx.AsyncClient) -> None:
    await client.post("/api/backtest")
    assert (await wait_finished(client))["report"] is not None
    assert (await client.put("/api/parameters", json={"EMA_SHORT_PERIOD": 8})).status_code == 200
    assert (await client.get("/api/backtest/latest")).json()["report"] is None
    assert (await client.get("/api/backtest/report")).status_code == 404


async def test_the_backtest_panel_applies_the_executors_circuit_breaker(
    settings_factory: Callable[..., ApiSettings],
) -> None:
    app: FastAPI = create_app(settings_factory(BREAKER_DAILY_LOSS_PCT="0.05", BREAKER_MAX_LOSING_STREAK="2"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            await client.post("/api/login", json={"password": PASSWORD})
            assert (await client.post("/api/backtest")).status_code == 202
            body = await wait_finished(client)
            assert body["run"]["state"] == "finished", body["run"]
            page = (await client.get(body["report"]["url"])).text
    assert body["report"]["summary"]["skipped_entries"] > 0
    assert "BREAKER_DAILY_LOSS_PCT" in page and "BREAKER_MAX_LOSING_STREAK" in page


async def test_the_backtest_models_the_deployments_protection(
    settings_factory: Callable[..., ApiSettings],
) -> None:
    # The executor's PROTECTION=exchange: the dashboard's backtest sells at the OCO's legs too.
    settings = settings_factory(PROTECTION="exchange", STOP_LIMIT_OFFSET="0.01")
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            await client.post("/api/login", json={"password": PASSWORD})
            assert (await client.post("/api/backtest")).status_code == 202
            body = await wait_finished(client)
    assert body["run"]["state"] == "finished", body["run"]
    report = json.loads((settings.reports_dir / f"{body['report']['key']}.json").read_text())
    assert report["summary"]["settings"]["PROTECTION"] == "exchange"
