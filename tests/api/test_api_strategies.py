"""Strategies over HTTP: the schema list, per-symbol sets validated with their strategy's model,
and the per-symbol switch (refused while a position is open unless it keeps its exits)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared import streams
from shared.bus import publish
from shared.codec import decode, dumps
from shared.events import Decision, make_event
from tests.api.helpers import MINUTE, T0, kline


@pytest.fixture
def settings(settings_factory: Callable[..., ApiSettings]) -> ApiSettings:
    return settings_factory(STRATEGIES="ETHUSDT:rsi2_reversion")


async def _parameters_entries(redis: Redis) -> list[tuple[str, str, int]]:
    entries = [decode(fields).payload for _, fields in await redis.xrange(streams.CONTROL_PARAMETERS)]
    return [(e.symbol, e.strategy, e.parameters_version) for e in entries]


async def test_strategies_lists_every_strategy_with_its_schema_and_each_symbols_choice(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/strategies")).json()
    by_name = {s["name"]: s for s in body["strategies"]}
    assert {"ema_cross_rsi", "rsi2_reversion", "donchian_breakout", "sma_cross_example"} <= set(by_name)
    entry_rsi = by_name["rsi2_reversion"]["parameters"]["properties"]["ENTRY_RSI"]
    assert (entry_rsi["title"], entry_rsi["exclusiveMinimum"], entry_rsi["exclusiveMaximum"]) == ("Entry RSI", 0, 100)
    assert entry_rsi["description"] and entry_rsi["live_safe"] is True
    stop = by_name["donchian_breakout"]["parameters"]["properties"]["STOP_LOSS_PERCENTAGE"]
    assert stop["title"] == "Stop-loss distance" and stop["group"] == "risk"
    assert {o["column"] for o in by_name["donchian_breakout"]["overlays"]} == {"channel_high", "channel_low"}
    assert body["symbols"] == [
        {"symbol": "BTCUSDT", "strategy": "ema_cross_rsi", "parameters_version": 0},
        {"symbol": "ETHUSDT", "strategy": "rsi2_reversion", "parameters_version": 0},
    ]


async def test_a_symbols_set_is_validated_with_its_strategys_model_and_versioned_alone(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    eth = (await client.get("/api/parameters", params={"symbol": "ETHUSDT"})).json()
    assert (eth["strategy"], eth["version"], eth["parameters"]["ENTRY_RSI"]) == ("rsi2_reversion", 0, 10.0)
    assert {f["name"]: f["label"] for f in eth["fields"]}["TREND_PERIOD"] == "Trend average period"
    bad = await client.put(
        "/api/parameters",
        params={"symbol": "ETHUSDT"},
        json={"ENTRY_RSI": 150, "EXIT_PERIOD": 600, "EMA_SHORT_PERIOD": 8, "STOP_LOSS_PERCENTAGE": "7"},
    )
    assert bad.status_code == 422
    problems = {p["field"]: p for p in bad.json()["detail"]}
    assert set(problems) == {"ENTRY_RSI", "EXIT_PERIOD", "EMA_SHORT_PERIOD", "STOP_LOSS_PERCENTAGE"}
    assert problems["ENTRY_RSI"]["label"] == "Entry RSI"
    assert "150" not in bad.text and "600" not in bad.text  # nothing sent comes back
    assert await _parameters_entries(redis_client) == []  # nothing applied
    good = await client.put("/api/parameters", params={"symbol": "ETHUSDT"}, json={"ENTRY_RSI": 5})
    assert good.status_code == 200 and good.json()["version"] == 1 and good.json()["command_id"]
    btc = await client.put("/api/parameters", params={"symbol": "BTCUSDT"}, json={"EMA_SHORT_PERIOD": 8})
    assert btc.json()["version"] == 1 and btc.json()["strategy"] == "ema_cross_rsi"
    assert (await client.get("/api/parameters", params={"symbol": "ETHUSDT"})).json()["version"] == 1
    assert await _parameters_entries(redis_client) == [
        ("ETHUSDT", "rsi2_reversion", 1),
        ("BTCUSDT", "ema_cross_rsi", 1),
    ]
    history = (await client.get("/api/parameters/history", params={"symbol": "ETHUSDT"})).json()
    assert [(h["symbol"], h["strategy"], h["changes"]) for h in history] == [
        ("ETHUSDT", "rsi2_reversion", [{"field": "ENTRY_RSI", "old": 10.0, "new": 5.0}])
    ]
    assert (await client.get("/api/parameters", params={"symbol": "XRPUSDT"})).status_code == 404


async def test_the_switch_is_refused_while_a_position_is_open_unless_it_keeps_its_exits(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await client.put("/api/parameters", params={"symbol": "BTCUSDT"}, json={"STOP_LOSS_PERCENTAGE": "0.015"})
    unknown = await client.put("/api/parameters/strategy", params={"symbol": "BTCUSDT"}, json={"strategy": "nope"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "strategy"
    position = {"symbol": "BTCUSDT", "status": "OPEN", "stop_loss": "98000", "take_profit": "105000"}
    await redis_client.hset(streams.POSITIONS, "BTCUSDT", dumps(position))
    refused = await client.put(
        "/api/parameters/strategy", params={"symbol": "BTCUSDT"}, json={"strategy": "donchian_breakout"}
    )
    assert refused.status_code == 409 and "keep_exits" in refused.json()["detail"]
    assert await _parameters_entries(redis_client) == [("BTCUSDT", "ema_cross_rsi", 1)]
    switched = await client.put(
        "/api/parameters/strategy",
        params={"symbol": "BTCUSDT"},
        json={"strategy": "donchian_breakout", "keep_exits": True},
    )
    body = switched.json()
    assert switched.status_code == 200 and body["command_id"]
    assert (body["strategy"], body["version"]) == ("donchian_breakout", 2)
    assert body["parameters"]["STOP_LOSS_PERCENTAGE"] == "0.015" and body["parameters"]["ENTRY_PERIOD"] == 20
    assert "EMA_SHORT_PERIOD" not in body["parameters"]
    # From now on its set is validated with the new strategy's model.
    params = {"symbol": "BTCUSDT"}
    changed = await client.put("/api/parameters", params=params, json={"ENTRY_PERIOD": 25})
    assert changed.status_code == 200 and changed.json()["version"] == 3
    stale = await client.put("/api/parameters", params=params, json={"EMA_SHORT_PERIOD": 8, "ENTRY_PERIOD": 3000})
    assert stale.status_code == 422
    assert {p["field"]: p["message"] for p in stale.json()["detail"]}["EMA_SHORT_PERIOD"] == "unknown parameter"
    assert {p["field"] for p in stale.json()["detail"]} == {"EMA_SHORT_PERIOD", "ENTRY_PERIOD"}
    # The other symbol's set is untouched; ETHUSDT is flat, so it switches without confirmation.
    assert (await client.get("/api/parameters", params={"symbol": "ETHUSDT"})).json()["version"] == 0
    eth = await client.put("/api/parameters/strategy", params={"symbol": "ETHUSDT"}, json={"strategy": "ema_cross_rsi"})
    assert eth.status_code == 200 and eth.json()["version"] == 1
    assert (await client.get("/api/strategies")).json()["symbols"] == [
        {"symbol": "BTCUSDT", "strategy": "donchian_breakout", "parameters_version": 3},
        {"symbol": "ETHUSDT", "strategy": "ema_cross_rsi", "parameters_version": 1},
    ]


async def test_the_chart_serves_the_lines_its_symbols_strategy_declares(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    for index in range(3):
        await publish(redis_client, streams.kline_stream("ETHUSDT"), kline("ETHUSDT", index, "10"))
        record = Decision(
            symbol="ETHUSDT",
            interval="1m",
            candle_open_time_ms=T0 + index * MINUTE,
            close=Decimal("10"),
            warm=True,
            entry=False,
            exit=False,
            conditions=[],
            indicators={"rsi": 30.0 + index, "trend_sma": 9.5, "exit_sma": 10.5, "missing": [], "history": False},
            parameters_version=0,
            strategy="rsi2_reversion",
        )
        await publish(redis_client, streams.DECISIONS, make_event(record, "strategy"))
    body = (await client.get("/api/candles", params={"symbol": "ETHUSDT", "limit": 10})).json()
    assert (body["strategy"], body["parameters_version"]) == ("rsi2_reversion", 0)
    assert [(o["column"], o["label"], o["pane"]) for o in body["overlays"]] == [
        ("rsi", "RSI 2", "oscillator"),
        ("trend_sma", "SMA 200", "price"),
        ("exit_sma", "SMA 5", "price"),
    ]
    assert body["rsi_overbought"] is None  # rsi2_reversion has no such bound
    assert body["candles"][2]["lines"] == {"rsi": 32.0, "trend_sma": 9.5, "exit_sma": 10.5}
    # After a switch the chart names the new strategy's lines.
    await client.put("/api/parameters/strategy", params={"symbol": "ETHUSDT"}, json={"strategy": "donchian_breakout"})
    body = (await client.get("/api/candles", params={"symbol": "ETHUSDT"})).json()
    assert [o["column"] for o in body["overlays"]] == ["channel_high", "channel_low"]
    assert body["parameters_version"] == 1
