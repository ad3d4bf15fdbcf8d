"""The live events carry what the panels show: formatted orders joined with their ledger row, the
trade row and the new profit after a trade event, position snapshots, candles and prices in the
symbol's precision; and a resume replays the trade event with one profit summary after it."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared import streams
from shared.bus import publish
from shared.codec import dumps
from shared.events import OrderUpdate, PositionClosed, PositionSnapshot, make_event
from tests.api.helpers import SseReader, kline, seed, ticker
from tests.api.test_api_events import open_stream, wait_subscribed

BTC_FILTERS = {
    "symbol": "BTCUSDT",
    "base_asset": "BTC",
    "quote_asset": "USDT",
    "tick_size": "0.01000000",
    "step_size": "0.00001000",
    "min_qty": "0.00001",
    "min_notional": "5",
}


async def test_events_carry_formatted_panel_data(
    live_factory, settings: ApiSettings, redis_client: Redis, ledger_url: str
) -> None:
    await seed(ledger_url, trades=2)
    await redis_client.hset(streams.SYMBOL_INFO, "BTCUSDT", dumps(BTC_FILTERS))
    live = await live_factory(settings)
    async with httpx.AsyncClient() as client:
        await live.login(client)
        async with await open_stream(client, live) as response:
            reader = SseReader(response)
            await wait_subscribed(live)
            await publish(redis_client, streams.ticker_stream("BTCUSDT"), ticker("BTCUSDT", "105861.12000000"))
            await publish(redis_client, streams.kline_stream("BTCUSDT"), kline("BTCUSDT", 1, "105861.123"))
            await publish(
                redis_client,
                streams.EXECUTOR_EVENTS,
                make_event(
                    OrderUpdate(
                        symbol="BTCUSDT",
                        client_order_id="x1",
                        side="SELL",
                        status="FILLED",
                        quantity="0.50000000",
                        executed_quantity="0.5",
                        quote_quantity="50.5000000000001",
                        average_price="101.000000000000002",
                    ),
                    "executor",
                ),
            )
            await publish(
                redis_client,
                streams.EXECUTOR_EVENTS,
                make_event(
                    PositionSnapshot(
                        symbol="BTCUSDT",
                        status="OPEN",
                        trade_id=9,
                        entry_price="105000.123456",
                        quantity="0.009990000",
                        dust_quantity="0.0000025",
                        entry_time_ms=1_000,
                        stop_loss="102900.1",
                        take_profit="110250",
                    ),
                    "executor",
                ),
            )
            await publish(
                redis_client,
                streams.EXECUTOR_EVENTS,
                make_event(
                    PositionClosed(
                        symbol="BTCUSDT",
                        entry_price="101",
                        exit_price="104.03",
                        quantity="0.5",
                        quote_spent="50.5",
                        quote_received="52.015",
                        return_pct="3.0000000000000000000000000001",
                        exit_reason="take_profit",
                        entry_time_ms=1,
                        exit_time_ms=2,
                        client_order_id="x1",
                        position_id=2,
                    ),
                    "executor",
                ),
            )
            # The hub keeps each stream's order, not the order between streams: collect by kind.
            kinds = {
                "price": lambda e: e.event == "price",
                "candle": lambda e: e.event == "candle",
                "order": lambda e: e.event == "orders" and e.data["type"] == "order_update",
                "position": lambda e: e.event == "position",
                "closed": lambda e: e.event == "orders" and e.data["type"] == "position_closed",
                "profit": lambda e: e.event == "profit",
            }
            seen: dict[str, Any] = {}
            while len(seen) < len(kinds):
                event = await reader.next()
                for kind, matches in kinds.items():
                    if kind not in seen and matches(event):
                        seen[kind] = event
            price, candle, order = seen["price"], seen["candle"], seen["order"]
            position, closed, summary = seen["position"], seen["closed"], seen["profit"]
    assert price.data["price"] == "105861.12"
    assert candle.data["close"] == "105861.12" and candle.data["volume"] == "3.50000" and candle.id is not None
    assert order.data["quote_quantity"] == "50.50" and order.data["average_price"] == "101.00"
    assert order.data["order"]["client_order_id"] == "x1" and order.data["order"]["trade_id"] == 2
    assert position.data["entry_price"] == "105000.12" and position.data["quantity"] == "0.00999"
    assert position.data["dust_quantity"] == "0.00000250" and position.data["trade_id"] == 9 and position.id is not None
    assert closed.data["return_pct"] == "3.00" and closed.data["trade"]["id"] == 2
    assert closed.data["trade"]["profit_quote"] == "1.52" and closed.data["trade"]["exit_reason"] == "take_profit"
    assert summary.id is None and summary.data["total"]["trades"] == 2
    assert (
        summary.data["symbols"]["BTCUSDT"]["realised_quote"]
        == (await _profit(live))["symbols"]["BTCUSDT"]["realised_quote"]
    )

    # A client resuming from before the trade event gets it again, with one profit summary after it.
    async with httpx.AsyncClient() as client:
        await live.login(client)
        async with await open_stream(client, live, {"Last-Event-ID": order.id or ""}) as response:
            reader = SseReader(response)
            # A market entry of the same millisecond as the order may come again too (entries of
            # different streams in one millisecond have no order): only the trade's events count.
            names: list[str] = []
            while len(names) < 3:
                event = await reader.next()
                if event.event not in ("price", "candle"):
                    names.append(event.event)
    assert names == ["position", "orders", "profit"]


async def _profit(live) -> dict:
    async with httpx.AsyncClient() as client:
        await live.login(client)
        return (await client.get(f"{live.url}/api/profit")).json()
