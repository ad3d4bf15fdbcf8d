"""Applying a study's best parameters to one symbol's set: the same validated, versioned change as
PUT /api/parameters (dangerous values need the confirmation), other sets untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared import streams
from shared.codec import decode


@pytest.fixture
def settings(settings_factory: Callable[..., ApiSettings], tmp_path: Path) -> ApiSettings:
    return settings_factory(STRATEGIES="ETHUSDT:rsi2_reversion", OPTIMIZE_REPORT_DIR=str(tmp_path / "studies"))


def write_study(settings: ApiSettings, key: str, params: dict[str, Any], verdict: str = "promising") -> None:
    folder = settings.optimize_reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "study": {"name": key, "trials": 8},
        "strategy": "ema_cross_rsi",
        "symbols": ["BTCUSDT"],
        "best": {"params": params, "metrics": {"sharpe": 1.2}},
        "verdict": {"verdict": verdict, "reasons": ["PBO 0.70"] if verdict == "likely overfit" else []},
        "overfitting": {"pbo": 0.2},
    }
    (folder / f"{key}.json").write_text(json.dumps(document))


async def _changes(redis: Redis) -> list[tuple[str, str, int, str]]:
    entries = [decode(fields).payload for _, fields in await redis.xrange(streams.CONTROL_PARAMETERS)]
    return [(e.symbol, e.strategy, e.parameters_version, e.command_id) for e in entries]


async def test_a_study_applied_to_one_symbol_versions_that_symbols_set_only(
    client: httpx.AsyncClient, redis_client: Redis, settings: ApiSettings
) -> None:
    write_study(settings, "fast", {"EMA_SHORT_PERIOD": 6, "STOP_LOSS_PERCENTAGE": 0.0125})
    done = await client.post("/api/studies/fast/apply", params={"symbol": "btcusdt"})
    body = done.json()
    assert done.status_code == 200, body
    assert (body["symbol"], body["strategy"], body["version"]) == ("BTCUSDT", "ema_cross_rsi", 1)
    assert body["parameters"]["EMA_SHORT_PERIOD"] == 6 and body["parameters"]["STOP_LOSS_PERCENTAGE"] == "0.0125"
    # The executor answers the change under this id, as any parameter change.
    assert await _changes(redis_client) == [("BTCUSDT", "ema_cross_rsi", 1, body["command_id"])]
    assert (await client.get("/api/parameters", params={"symbol": "BTCUSDT"})).json()["version"] == 1
    assert (await client.get("/api/parameters")).json()["version"] == 0  # the shared set is untouched
    history = (await client.get("/api/parameters/history", params={"symbol": "BTCUSDT"})).json()
    assert sorted(c["field"] for c in history[0]["changes"]) == ["EMA_SHORT_PERIOD", "STOP_LOSS_PERCENTAGE"]
    again = (await client.post("/api/studies/fast/apply", params={"symbol": "BTCUSDT"})).json()
    assert again["version"] == 1 and again["command_id"] is None  # nothing new to answer


async def test_a_study_of_another_strategy_or_symbol_is_refused_naming_the_field(
    client: httpx.AsyncClient, redis_client: Redis, settings: ApiSettings
) -> None:
    write_study(settings, "ema", {"EMA_SHORT_PERIOD": 6})
    other = await client.post("/api/studies/ema/apply", params={"symbol": "ETHUSDT"})
    assert other.status_code == 422
    [problem] = other.json()["detail"]
    assert problem["field"] == "symbol" and "rsi2_reversion" in problem["message"]
    assert (await client.post("/api/studies/ema/apply", params={"symbol": "XRPUSDT"})).status_code == 404
    assert (await client.post("/api/studies/nope/apply", params={"symbol": "BTCUSDT"})).status_code == 404
    write_study(settings, "bad", {"EMA_SHORT_PERIOD": 500})
    bad = await client.post("/api/studies/bad/apply", params={"symbol": "BTCUSDT"})
    assert bad.status_code == 422 and [p["field"] for p in bad.json()["detail"]] == ["EMA_SHORT_PERIOD"]
    assert await _changes(redis_client) == []


async def test_dangerous_values_need_the_same_confirmation_as_the_parameters_form(
    client: httpx.AsyncClient, redis_client: Redis, settings: ApiSettings
) -> None:
    write_study(settings, "risky", {"RISK_PER_TRADE": 0.08}, verdict="likely overfit")
    overfit = await client.post("/api/studies/risky/apply", params={"symbol": "BTCUSDT"})
    assert overfit.status_code == 409 and "likely overfit" in overfit.json()["detail"]
    query = {"symbol": "BTCUSDT", "confirm_overfit": "true"}
    refused = await client.post("/api/studies/risky/apply", params=query)
    assert refused.status_code == 409
    dangers = refused.json()["dangers"]
    assert dangers and all("RISK_PER_TRADE" in d["fields"] and "Risk per trade" in d["labels"] for d in dangers)
    assert await _changes(redis_client) == []
    done = await client.post("/api/studies/risky/apply", params={**query, "confirm_dangerous": "true"})
    assert done.status_code == 200 and done.json()["version"] == 1
    confirmed = (await client.get("/api/parameters", params={"symbol": "BTCUSDT"})).json()
    assert confirmed["confirmed_dangers"]
