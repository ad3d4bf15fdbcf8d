"""ccxt 4.5.90 (``binance`` and ``ccxt.pro.binance``) against a real simulator process."""

from __future__ import annotations

import asyncio
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ccxt
import pytest

from tests.support.simulator import SimulatorProcess, make_ccxt_client

pytestmark = pytest.mark.integration
D = Decimal


def raw_balances(balance: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in balance["info"]["balances"]}


def fee_of(amount: Decimal) -> Decimal:
    return (amount * D("0.001")).quantize(D("1e-8"), ROUND_HALF_UP)


async def test_trading_flow_with_exact_balances(live: SimulatorProcess) -> None:
    exchange = make_ccxt_client(live)
    try:
        markets = await exchange.load_markets()
        market = markets["ETH/USDT"]
        assert (market["id"], market["spot"], market["precision"]["amount"], market["limits"]["cost"]["min"]) == (
            "ETHUSDT",
            True,
            0.0001,
            5.0,
        )
        before = raw_balances(await exchange.fetch_balance())
        buy = await exchange.create_order("ETH/USDT", "market", "buy", 0.05)
        info = buy["info"]
        assert info["status"] == "FILLED" and info["clientOrderId"].startswith("x-TKT5PX2F")
        cost = D(info["cummulativeQuoteQty"])
        fee = sum(D(f["commission"]) for f in info["fills"])
        assert fee == fee_of(D(info["executedQty"])) and buy["status"] == "closed"
        fetched = await exchange.fetch_order(buy["id"], "ETH/USDT")
        by_client = await exchange.fetch_order(None, "ETH/USDT", {"origClientOrderId": buy["clientOrderId"]})
        assert fetched["id"] == by_client["id"] == buy["id"] and by_client["filled"] == 0.05
        after = raw_balances(await exchange.fetch_balance())
        assert after["USDT"][0] == before["USDT"][0] - cost
        assert after["ETH"][0] == before["ETH"][0] + D("0.05") - fee
        trades = await exchange.fetch_my_trades("ETH/USDT", params={"orderId": buy["id"]})
        assert [t["order"] for t in trades] == [buy["id"]] * len(info["fills"])
        assert sum(D(t["info"]["qty"]) for t in trades) == D("0.05")

        sell = await exchange.create_order("ETH/USDT", "market", "sell", 0.0499)
        proceeds = D(sell["info"]["cummulativeQuoteQty"])
        final = raw_balances(await exchange.fetch_balance())
        assert final["USDT"][0] == after["USDT"][0] + proceeds - fee_of(proceeds)
        assert final["ETH"][0] == after["ETH"][0] - D("0.0499")

        ticker = await exchange.fetch_ticker("ETH/USDT")
        assert ticker["last"] > 0 and ticker["high"] >= ticker["last"] >= ticker["low"] and ticker["baseVolume"] > 0
        price = round(ticker["last"] * 0.6, 2)
        resting = await exchange.create_order("ETH/USDT", "limit", "buy", 0.01, price)
        assert resting["status"] == "open"
        assert resting["id"] in [o["id"] for o in await exchange.fetch_open_orders("ETH/USDT")]
        cancelled = await exchange.cancel_order(resting["id"], "ETH/USDT")
        assert cancelled["status"] == "canceled"
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("ETH/USDT", "limit", "buy", 500, price)
        with pytest.raises(ccxt.OrderNotFound):
            await exchange.fetch_order("987654321", "ETH/USDT")
        ohlcv = await exchange.fetch_ohlcv("ETH/USDT", "1m", limit=5)
        assert len(ohlcv) == 5 and ohlcv[-1][0] - ohlcv[0][0] == 4 * 60_000
    finally:
        await exchange.close()


async def test_pro_market_streams(live: SimulatorProcess) -> None:
    exchange = make_ccxt_client(live, pro=True)
    try:
        candles = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), 5)
        assert candles and len(candles[-1]) == 6
        ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USDT", {"name": "miniTicker"}), 5)
        assert ticker["symbol"] == "BTC/USDT" and ticker["last"] > 0 and ticker["info"]["e"] == "24hrMiniTicker"
        connections = live.state()["connections"]
        assert {"btcusdt@kline_1m", "btcusdt@miniTicker"} <= set(connections["stream_subscriptions"])
    finally:
        await exchange.close()


async def wait_for_subscription(sim: SimulatorProcess, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while sim.state()["connections"]["user_subscriptions"] == 0:
        assert time.monotonic() < deadline, "no user data subscription"
        await asyncio.sleep(0.05)


async def test_pro_user_data(live: SimulatorProcess) -> None:
    exchange = make_ccxt_client(live, pro=True)
    rest = make_ccxt_client(live)
    try:
        await exchange.load_markets()
        await rest.load_markets()
        balance_task = asyncio.create_task(exchange.watch_balance())
        await wait_for_subscription(live)
        orders_task = asyncio.create_task(exchange.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.1)
        placed = await rest.create_order("BTC/USDT", "market", "buy", 0.001)
        balance = await asyncio.wait_for(balance_task, 5)
        orders = await asyncio.wait_for(orders_task, 5)
        assert balance["USDT"]["free"] is not None and balance["BTC"]["free"] is not None
        assert placed["id"] in [o["id"] for o in orders]
        account = raw_balances(await rest.fetch_balance())
        assert D(str(balance["BTC"]["free"])) == account["BTC"][0]
    finally:
        await exchange.close()
        await rest.close()
