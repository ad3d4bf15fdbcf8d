"""Operator safety over HTTP: command ids, close-all, parameters checked against the strategy's
history, every invalid field at once with its label, dangerous settings confirmed explicitly."""

from __future__ import annotations

import logging

import httpx
import pytest
from redis.asyncio import Redis

from shared import signing, streams
from shared.codec import decode, loads


def sealed(fields: dict[str, str]) -> bool:
    return signing.check_fields(fields, signing.installed_key()) is signing.Seal.VALID


async def test_every_command_returns_the_id_it_is_answered_under(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    ids = set()
    for path in ("/api/bot/stop", "/api/bot/pause-entries", "/api/bot/start", "/api/positions/BTCUSDT/close"):
        body = (await client.post(path)).json()
        assert len(body["command_id"]) == 32
        ids.add(body["command_id"])
    assert len(ids) == 4
    sent = [decode(f).payload.command_id for _, f in await redis_client.xrange(streams.CONTROL_COMMANDS)]
    sent += [decode(f).payload.command_id for _, f in await redis_client.xrange(streams.symbol_commands("BTCUSDT"))]
    assert set(sent) == ids


async def test_close_all_stops_and_asks_every_symbols_owner_to_close(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    response = await client.post("/api/bot/close-all")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "stopped" and body["symbols"] == ["BTCUSDT", "ETHUSDT"]
    state = loads(await redis_client.get(streams.BOT_STATE))
    assert state["state"] == "stopped"
    assert signing.check_record(state, signing.installed_key()) is signing.Seal.VALID
    [(_, fields)] = await redis_client.xrange(streams.CONTROL_COMMANDS)
    assert decode(fields).payload.command == "close_all" and sealed(fields)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        # The symbol's command stream, sealed: the api writes no executor inbox.
        [(_, fields)] = await redis_client.xrange(streams.symbol_commands(symbol))
        close = decode(fields).payload
        assert (close.command, close.symbol, close.origin, close.command_id) == (
            "close_position",
            symbol,
            "close_all",
            body["command_id"],
        )
        assert sealed(fields)
    assert not [key async for key in redis_client.scan_iter(match="executor:inbox:*")]


async def test_a_period_longer_than_the_window_is_refused_naming_it(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    response = await client.put("/api/parameters", json={"EMA_FILTER_PERIOD": 1500})
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "EMA_FILTER_PERIOD" and problem["label"] == "EMA filter period"
    assert "STRATEGY_WINDOW_CANDLES=1000" in problem["message"]
    assert not await redis_client.exists(streams.PARAMETERS)
    # With the filter off the period does not matter; within the window it is fine.
    assert (await client.put("/api/parameters", json={"EMA_FILTER_PERIOD": 900})).status_code == 200


@pytest.mark.parametrize("env", [{"WARMUP_CANDLES": "300"}])
async def test_the_back_fill_limits_periods_too(settings_factory, env) -> None:
    history = settings_factory(**env).history()
    [(field, message)] = history.problems({"EMA_LONG_PERIOD": 400})
    assert field == "EMA_LONG_PERIOD" and "WARMUP_CANDLES=300" in message


async def test_two_bad_fields_give_two_errors_with_their_labels(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/parameters", json={"RSI_PERIOD": "often", "RISK_PER_TRADE": "2"})
    assert response.status_code == 422
    detail = {item["field"]: item for item in response.json()["detail"]}
    assert set(detail) == {"RSI_PERIOD", "RISK_PER_TRADE"}
    assert detail["RSI_PERIOD"]["label"] == "RSI period" and detail["RISK_PER_TRADE"]["label"] == "Risk per trade"
    fields = {f["name"]: f["label"] for f in (await client.get("/api/parameters")).json()["fields"]}
    assert fields["STOP_LOSS_PERCENTAGE"] == "Stop-loss distance"


async def test_a_dangerous_setting_needs_the_confirmation_flag_and_is_logged(
    client: httpx.AsyncClient, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.put("/api/parameters", json={"RISK_PER_TRADE": "0.5", "STOP_LOSS_PERCENTAGE": "0.001"})
    assert response.status_code == 409, response.text
    body = response.json()
    assert {tuple(d["fields"]) for d in body["dangers"]} == {
        ("RISK_PER_TRADE",),
        ("STOP_LOSS_PERCENTAGE",),
        ("CAPITAL_ALLOCATION", "RISK_PER_TRADE"),
    }
    assert "confirm" in body["detail"]
    assert not await redis_client.exists(streams.PARAMETERS)

    with caplog.at_level(logging.WARNING):
        response = await client.put(
            "/api/parameters",
            params={"confirm_dangerous": "true"},
            json={"RISK_PER_TRADE": "0.5", "STOP_LOSS_PERCENTAGE": "0.001"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and len(body["confirmed_dangers"]) == 3 and body["command_id"]
    assert any("dangerous parameters confirmed" in r.getMessage() for r in caplog.records)
    [(_, fields)] = await redis_client.xrange(streams.CONTROL_PARAMETERS)
    assert decode(fields).payload.command_id == body["command_id"] and sealed(fields)
    record = loads(await redis_client.get(streams.PARAMETERS))
    assert record["confirmed_dangers"] and signing.check_record(record, signing.installed_key()) is signing.Seal.VALID
    # A later change that leaves the dangerous fields alone needs no new confirmation.
    assert (await client.put("/api/parameters", json={"RSI_PERIOD": 12})).status_code == 200
    # 100 % allocation with 3 % risk is dangerous on its own.
    await client.put(
        "/api/parameters",
        params={"confirm_dangerous": "true"},
        json={"RISK_PER_TRADE": "0.01", "STOP_LOSS_PERCENTAGE": "0.02"},
    )
    response = await client.put("/api/parameters", json={"RISK_PER_TRADE": "0.03"})
    assert response.status_code == 409 and [d["fields"] for d in response.json()["dangers"]] == [
        ["CAPITAL_ALLOCATION", "RISK_PER_TRADE"]
    ]
    assert (
        await client.put("/api/parameters", json={"RISK_PER_TRADE": "0.03", "CAPITAL_ALLOCATION": "0.5"})
    ).status_code == 200
