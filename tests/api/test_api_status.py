"""Status, health, candles with indicators, and the recent feeds, from state the services write."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from services.api.routes.status import split_symbol, unrealised_pct
from shared import streams
from shared.bus import publish
from shared.codec import dumps
from shared.events import BotStateChanged, MarketStatus, make_event, now_ms
from tests.api.helpers import MINUTE, T0, decision, kline, log, seed, signal


async def test_status_shows_mode_state_prices_balances_position_and_last_signal(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    now = now_ms()
    await redis_client.set(
        streams.BOT_STATE, dumps({"state": "error", "reason": "exchange refused the key", "changed_at_ms": now})
    )
    await redis_client.hset(streams.MARKET_LAST_PRICE, mapping={"BTCUSDT": "105000.5", "ETHUSDT": "2500"})
    await redis_client.hset(streams.MARKET_FRESHNESS, mapping={"BTCUSDT": str(now - 1500)})
    await redis_client.hset(
        streams.ACCOUNT_SNAPSHOT,
        mapping={
            "USDT": dumps({"free": "9500.25", "locked": "0"}),
            "BTC": dumps({"free": "0.01", "locked": "0"}),
            "BNB": dumps({"free": "1", "locked": "0"}),
        },
    )
    await redis_client.hset(
        streams.POSITIONS,
        mapping={
            "BTCUSDT": dumps(
                {
                    "symbol": "BTCUSDT",
                    "status": "OPEN",
                    "entry_price": "100000",
                    "quantity": "0.01",
                    "entry_time_ms": now - 60_000,
                    "stop_loss": "98000",
                    "take_profit": "105000",
                    "protection": "exchange",
                }
            ),
            "ETHUSDT": dumps({"symbol": "ETHUSDT", "status": "FLAT"}),
        },
    )
    await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 3, "100000"))
    await publish(redis_client, streams.MARKET_STATUS, make_event(MarketStatus(state="connected"), "market_data"))

    body = (await client.get("/api/status")).json()
    assert body["mode"] == "sim" and body["timeframe"] == "1m" and body["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert body["bot"] == {"state": "error", "reason": "exchange refused the key", "changed_at_ms": now}
    btc, eth = body["markets"]
    assert btc["price"] == "105000.5" and 1500 <= btc["price_age_ms"] < 10_000
    assert btc["base_asset"] == "BTC" and btc["quote_asset"] == "USDT"
    assert btc["position"]["unrealised_pct"] == "5.00" and btc["position"]["stop_loss"] == "98000"
    assert btc["position"]["protection"] == "exchange"
    assert btc["last_signal"]["side"] == "BUY" and btc["last_signal"]["reason"] == "ema_cross_up"
    assert eth["position"] is None and eth["price_age_ms"] is None and eth["last_signal"] is None
    assert body["balances"] == {
        "BTC": {"free": "0.01", "locked": "0"},
        "USDT": {"free": "9500.25", "locked": "0"},
        "ETH": {"free": "0", "locked": "0"},
    }
    assert body["market_status"]["state"] == "connected"


async def test_the_executors_newer_state_report_wins_over_the_requested_state(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    assert (await client.get("/api/status")).json()["bot"]["state"] == "unknown"
    await publish(
        redis_client,
        streams.EXECUTOR_EVENTS,
        make_event(BotStateChanged(state="running", reason="executor started"), "executor"),
    )
    assert (await client.get("/api/status")).json()["bot"]["reason"] == "executor started"
    await client.post("/api/bot/pause-entries")
    assert (await client.get("/api/status")).json()["bot"]["state"] == "entries_paused"
    await publish(
        redis_client,
        streams.EXECUTOR_EVENTS,
        make_event(BotStateChanged(state="error", reason="exchange refused the key"), "executor"),
    )
    bot = (await client.get("/api/status")).json()["bot"]
    assert bot["state"] == "error" and bot["reason"] == "exchange refused the key"


def test_symbol_split_and_unrealised_percent() -> None:
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    assert unrealised_pct("200", "190") == "-5.00"
    assert unrealised_pct(None, "1") is None and unrealised_pct("0", "1") is None


async def test_health_is_public_and_reports_heartbeats_and_group_lag(
    anon: httpx.AsyncClient, redis_client: Redis
) -> None:
    await redis_client.set(
        streams.health_key("strategy", "h-1"),
        dumps({"service": "strategy", "instance": "h-1", "ts_ms": now_ms() - 300}),
        ex=10,
    )
    stream = streams.kline_stream("BTCUSDT")
    for index in range(3):
        await publish(redis_client, stream, kline("BTCUSDT", index, "100"))
    await redis_client.xgroup_create(stream, streams.GROUP_STRATEGY, id="0")
    await redis_client.xreadgroup(streams.GROUP_STRATEGY, "c1", {stream: ">"}, count=1)
    response = await anon.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["redis"] is True and body["status"] == "ok"
    assert body["services"] == [
        {"service": "strategy", "instance": "h-1", "age_ms": body["services"][0]["age_ms"], "up": True}
    ]
    [group] = body["groups"]
    assert group["oldest_pending_age_ms"] is not None and group["oldest_pending_age_ms"] >= 0
    assert group == {
        "stream": stream,
        "group": "strategy",
        "lag": 2,
        "pending": 1,
        "consumers": 1,
        "oldest_pending_age_ms": group["oldest_pending_age_ms"],
    }


async def test_health_counts_the_backlog_where_redis_lag_counter_is_lost(
    anon: httpx.AsyncClient, redis_client: Redis
) -> None:
    # Redis' own lag counter is unknown once an entry after the group's position was removed
    # (XDEL, or trimming past it): the health panel showed "?" although the backlog is countable.
    stream = streams.kline_stream("BTCUSDT")
    await redis_client.xgroup_create(stream, streams.GROUP_STRATEGY, id="$", mkstream=True)
    ids = [await publish(redis_client, stream, kline("BTCUSDT", index, "100")) for index in range(10)]
    await redis_client.xreadgroup(streams.GROUP_STRATEGY, "c1", {stream: ">"}, count=3)
    await redis_client.xack(stream, streams.GROUP_STRATEGY, *ids[:3])
    await redis_client.xdel(stream, ids[8])
    [info] = await redis_client.xinfo_groups(stream)
    assert info["lag"] is None
    [group] = (await anon.get("/api/health")).json()["groups"]
    assert (group["lag"], group["pending"], group["oldest_pending_age_ms"]) == (6, 0, None)
    reply = await redis_client.xreadgroup(streams.GROUP_STRATEGY, "c1", {stream: ">"}, count=100)
    await redis_client.xack(stream, streams.GROUP_STRATEGY, *[entry_id for entry_id, _ in reply[0][1]])
    [group] = (await anon.get("/api/health")).json()["groups"]
    assert (group["lag"], group["pending"]) == (0, 0)


async def test_candles_join_each_closed_candle_with_its_indicators_and_markers(
    client: httpx.AsyncClient, redis_client: Redis, ledger_url: str
) -> None:
    for index in range(5):
        await publish(redis_client, streams.kline_stream("BTCUSDT"), kline("BTCUSDT", index, str(100 + index)))
        if index != 2:  # no decision for candle 2: its indicators stay empty
            await publish(redis_client, streams.DECISIONS, decision("BTCUSDT", index, str(100 + index)))
        await publish(redis_client, streams.DECISIONS, decision("ETHUSDT", index, "9"))
    await publish(redis_client, streams.KLINE_UPDATES, kline("BTCUSDT", 5, "106", closed=False))
    await publish(redis_client, streams.KLINE_UPDATES, kline("ETHUSDT", 5, "7", closed=False))
    await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 3, "103"))
    await publish(redis_client, streams.SIGNALS, signal("ETHUSDT", 3, "9"))
    await seed(ledger_url, trades=1)
    await redis_client.hset(
        streams.POSITIONS,
        "BTCUSDT",
        dumps(
            {
                "symbol": "BTCUSDT",
                "status": "OPEN",
                "entry_price": "103",
                "quantity": "1",
                "entry_time_ms": T0,
                "stop_loss": "101",
                "take_profit": "108",
            }
        ),
    )

    body = (await client.get("/api/candles", params={"symbol": "BTCUSDT", "limit": 10})).json()
    candles = body["candles"]
    assert [c["time_ms"] for c in candles] == [T0 + i * MINUTE for i in range(6)]
    assert [c["closed"] for c in candles] == [True] * 5 + [False]
    assert candles[1]["close"] == "101" and candles[1]["ema_short"] == 101.0 and candles[1]["rsi"] == 41.0
    assert candles[1]["ema_filter"] == 98.0 and candles[1]["ema_long"] == 100.0
    assert candles[2]["ema_short"] is None and candles[5]["rsi"] is None
    assert [(m["kind"], m["time_ms"]) for m in body["markers"]] == [
        ("entry", T0),
        ("signal", T0 + 3 * MINUTE),
        ("exit", T0 + 5 * MINUTE),
    ]
    assert body["position"]["stop_loss"] == "101" and body["position"]["take_profit"] == "108"
    assert body["rsi_overbought"] == 75.0 and body["rsi_oversold"] == 25.0
    limited = (await client.get("/api/candles", params={"symbol": "BTCUSDT", "limit": 2})).json()
    assert [c["time_ms"] for c in limited["candles"]] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE, T0 + 5 * MINUTE]
    assert (await client.get("/api/candles", params={"symbol": "DOGEUSDT"})).status_code == 404
    assert (await client.get("/api/candles", params={"interval": "7m"})).status_code == 422


async def test_a_chart_answer_follows_every_new_entry_and_ledger_change(
    app: FastAPI, client: httpx.AsyncClient, redis_client: Redis, ledger_url: str
) -> None:
    async def chart() -> dict[str, Any]:
        return (await client.get("/api/candles", params={"symbol": "BTCUSDT", "limit": 10})).json()

    for index in range(3):
        await publish(redis_client, streams.kline_stream("BTCUSDT"), kline("BTCUSDT", index, str(100 + index)))
    assert [c["close"] for c in (await chart())["candles"]] == ["100", "101", "102"]
    assert await chart() == await chart()  # nothing new: the same answer
    await publish(redis_client, streams.KLINE_UPDATES, kline("BTCUSDT", 3, "104", closed=False))
    assert [(c["close"], c["closed"]) for c in (await chart())["candles"]][-1] == ("104", False)
    await publish(redis_client, streams.KLINE_UPDATES, kline("BTCUSDT", 3, "105", closed=False))
    assert (await chart())["candles"][-1]["close"] == "105"
    await publish(redis_client, streams.DECISIONS, decision("BTCUSDT", 1, "101"))
    assert (await chart())["candles"][1]["ema_short"] == 101.0
    await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 2, "102"))
    assert [m["kind"] for m in (await chart())["markers"]] == ["signal"]
    await publish(redis_client, streams.kline_stream("BTCUSDT"), kline("BTCUSDT", 3, "103"))
    assert [(c["close"], c["closed"]) for c in (await chart())["candles"]][-1] == ("103", True)
    await seed(ledger_url, trades=1)
    # What the event relay does on an executor event about a position: the ledger changed.
    app.state.resources.ledger.observe(streams.EXECUTOR_EVENTS, "1-0", {"type": "position_opened"})
    assert [m["kind"] for m in (await chart())["markers"]] == ["entry", "signal"]


async def test_candles_without_a_ledger_still_draw(client: httpx.AsyncClient, redis_client: Redis) -> None:
    await publish(redis_client, streams.kline_stream("ETHUSDT"), kline("ETHUSDT", 0, "2500"))
    body = (await client.get("/api/candles", params={"symbol": "ETHUSDT"})).json()
    assert len(body["candles"]) == 1 and body["markers"] == [] and body["position"] is None


async def test_logs_signals_decisions_feeds(client: httpx.AsyncClient, redis_client: Redis) -> None:
    for index in range(6):
        await publish(
            redis_client,
            streams.LOGS,
            log(
                f"line {index}",
                service="strategy" if index % 2 else "executor",
                level="WARNING" if index == 4 else "INFO",
            ),
        )
        await publish(redis_client, streams.DECISIONS, decision("BTCUSDT" if index % 2 else "ETHUSDT", index, "1"))
    logs = (await client.get("/api/logs", params={"limit": 3})).json()
    assert [item["data"]["message"] for item in logs] == ["line 3", "line 4", "line 5"]
    assert [
        item["data"]["message"] for item in (await client.get("/api/logs", params={"service": "executor"})).json()
    ] == ["line 0", "line 2", "line 4"]
    warnings = (await client.get("/api/logs", params={"level": "WARNING"})).json()
    assert [item["data"]["message"] for item in warnings] == ["line 4"]
    decisions = (await client.get("/api/decisions", params={"symbol": "BTCUSDT", "limit": 2})).json()
    assert [item["data"]["candle_open_time_ms"] for item in decisions] == [T0 + 5 * MINUTE, T0 + 3 * MINUTE]
    assert decisions[0]["data"]["indicators"]["rsi"] == 45.0
    await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 1, "100.5", side="SELL"))
    signals = (await client.get("/api/signals")).json()
    assert signals[0]["data"]["side"] == "SELL" and signals[0]["data"]["price"] == "100.5"


async def test_status_shows_the_tripped_breaker_limit_with_its_figures_until_the_next_market_day(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    from decimal import Decimal

    from shared.codec import decode
    from shared.trading.breaker import DAY_MS, BreakerLimits, BreakerState, ClosedTrade, advance, state_dict

    assert (await client.get("/api/status")).json()["breaker"] is None
    day = 20_000 * DAY_MS
    step = advance(
        BreakerState(),
        BreakerLimits(daily_loss_pct=Decimal(2)),
        day + 1000,
        ClosedTrade(Decimal(-30), day + 1000, Decimal(1000)),
    )
    await redis_client.set(streams.BREAKER, dumps({"state": state_dict(step.state)}))
    await redis_client.hset(streams.MARKET_CLOCK, mapping={"BTCUSDT": str(day + 5000)})
    breaker = (await client.get("/api/status")).json()["breaker"]
    assert breaker["tripped"] == "daily_loss" and breaker["tripped_at_ms"] == day + 1000
    assert breaker["figures"]["loss_pct"] == "3.00" and breaker["figures"]["day_start_equity"] == "1000"
    assert breaker["clears"] == "at the next UTC day of market time"
    await redis_client.hset(streams.MARKET_CLOCK, mapping={"BTCUSDT": str(day + DAY_MS)})
    assert (await client.get("/api/status")).json()["breaker"]["tripped"] is None

    sent = (await client.post("/api/breaker/reset")).json()
    assert sent["command"] == "reset_breaker" and sent["command_id"]
    [(_, fields)] = (await redis_client.xrange(streams.CONTROL_COMMANDS))[-1:]
    command = decode(dict(fields)).payload
    assert command.command == "reset_breaker" and command.command_id == sent["command_id"] and command.requested_by


async def test_a_reused_status_body_follows_every_change_and_keeps_its_clock_fields_current(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    now = now_ms()
    await redis_client.hset(streams.MARKET_LAST_PRICE, mapping={"BTCUSDT": "100000"})
    await redis_client.hset(streams.MARKET_FRESHNESS, mapping={"BTCUSDT": str(now - 1000)})
    first = (await client.get("/api/status")).json()
    await asyncio.sleep(0.05)
    again = (await client.get("/api/status")).json()
    # Nothing changed: the same body, with the wall-clock fields moving on.
    assert again["server_time_ms"] > first["server_time_ms"] and again["market"]["wall_ms"] > first["market"]["wall_ms"]
    assert again["markets"][0]["price_age_ms"] > first["markets"][0]["price_age_ms"]
    assert {**again, "server_time_ms": 0, "market": None, "markets": None} == {
        **first,
        "server_time_ms": 0,
        "market": None,
        "markets": None,
    }
    # Each kind of change shows at the next request: a key, a freshness stamp, a relayed event.
    await redis_client.hset(streams.MARKET_LAST_PRICE, mapping={"BTCUSDT": "100500"})
    assert (await client.get("/api/status")).json()["markets"][0]["price"] == "100500"
    await redis_client.hset(streams.MARKET_FRESHNESS, mapping={"BTCUSDT": str(now_ms())})
    assert (await client.get("/api/status")).json()["markets"][0]["price_age_ms"] < 1000
    await redis_client.hset(streams.ACCOUNT_SNAPSHOT, mapping={"USDT": dumps({"free": "12.5", "locked": "1"})})
    assert (await client.get("/api/status")).json()["balances"]["USDT"] == {"free": "12.5", "locked": "1"}
    await publish(redis_client, streams.MARKET_STATUS, make_event(MarketStatus(state="reconnecting"), "market_data"))
    assert (await client.get("/api/status")).json()["market_status"]["state"] == "reconnecting"
    await publish(
        redis_client, streams.EXECUTOR_EVENTS, make_event(BotStateChanged(state="stopped", reason="x"), "executor")
    )
    assert (await client.get("/api/status")).json()["bot"]["state"] == "stopped"
