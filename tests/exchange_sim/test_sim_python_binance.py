"""python-binance 1.0.37 (AsyncClient + BinanceSocketManager) against a real simulator process."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException
from binance.helpers import round_step_size

from shared.binance_client import close_client
from tests.support.simulator import SimulatorProcess, make_python_binance_client, make_socket_manager

pytestmark = pytest.mark.integration
D = Decimal


def balances(account: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in account["balances"]}


async def recv_until(socket: Any, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Messages up to and including the first one matching ``predicate`` (bounded)."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            message = await socket.recv()
            assert message.get("e") != "error", message
            seen.append(message)
            if predicate(message):
                return

    await asyncio.wait_for(read(), timeout)
    return seen


async def test_trading_flow_with_exact_balances(live: SimulatorProcess) -> None:
    client = await make_python_binance_client(live)
    try:
        info = await client.get_symbol_info("BTCUSDT")
        filters = {f["filterType"]: f for f in info["filters"]}
        step = D(filters["LOT_SIZE"]["stepSize"])
        assert (info["baseAsset"], info["quoteAsset"], step) == ("BTC", "USDT", D("0.00001"))
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        before = balances(await client.get_account())

        buy = await client.order_market_buy(symbol="BTCUSDT", quantity="0.002")
        assert buy["status"] == "FILLED" and buy["clientOrderId"].startswith("x-HNA2TXFJ")
        spent = sum(D(f["price"]) * D(f["qty"]) for f in buy["fills"])
        fee = sum(D(f["commission"]) for f in buy["fills"])
        assert spent == D(buy["cummulativeQuoteQty"]) and {f["commissionAsset"] for f in buy["fills"]} == {"BTC"}
        assert fee == D(buy["executedQty"]) * D("0.001")
        queried = await client.get_order(symbol="BTCUSDT", origClientOrderId=buy["clientOrderId"])
        assert (queried["orderId"], queried["status"], queried["cummulativeQuoteQty"]) == (
            buy["orderId"],
            "FILLED",
            buy["cummulativeQuoteQty"],
        )
        after = balances(await client.get_account())
        assert after["USDT"][0] == before["USDT"][0] - spent
        assert after["BTC"][0] == before["BTC"][0] + D(buy["executedQty"]) - fee

        trades = await client.get_my_trades(symbol="BTCUSDT", orderId=buy["orderId"])
        assert [t["id"] for t in trades] == [f["tradeId"] for f in buy["fills"]]
        assert sum(D(t["qty"]) for t in trades) == D(buy["executedQty"])

        received = D(buy["executedQty"]) - fee
        quantity = D(str(round_step_size(received, step)))
        sell = await client.order_market_sell(symbol="BTCUSDT", quantity=f"{quantity:f}")
        proceeds = sum(D(f["price"]) * D(f["qty"]) for f in sell["fills"])
        sell_fee = sum(D(f["commission"]) for f in sell["fills"])
        assert {f["commissionAsset"] for f in sell["fills"]} == {"USDT"}
        assert sell_fee == (proceeds * D("0.001")).quantize(D("1e-8"), ROUND_HALF_UP)  # 8-decimal commission
        final = balances(await client.get_account())
        assert final["USDT"][0] == after["USDT"][0] + proceeds - sell_fee
        assert final["BTC"][0] == after["BTC"][0] - quantity

        price = (D((await client.get_symbol_ticker(symbol="BTCUSDT"))["price"]) * D("0.7")).quantize(D("0.01"))
        resting = await client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=f"{price:f}")
        assert resting["status"] == "NEW"
        locked = balances(await client.get_account())["USDT"][1]
        assert locked >= price * D("0.001")
        assert resting["orderId"] in [o["orderId"] for o in await client.get_open_orders(symbol="BTCUSDT")]
        cancelled = await client.cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])
        assert cancelled["status"] == "CANCELED"
        assert balances(await client.get_account())["USDT"][1] == locked - price * D("0.001")

        with pytest.raises(BinanceAPIException) as caught:
            await client.order_market_buy(symbol="BTCUSDT", quantity="0.0010000001")
        assert caught.value.code == -1111
        with pytest.raises(BinanceAPIException) as caught:
            await client.order_limit_buy(symbol="BTCUSDT", quantity="50", price=f"{price:f}")
        assert (caught.value.code, caught.value.message) == (
            -2010,
            "Account has insufficient balance for requested action.",
        )
        klines = await client.get_klines(symbol="BTCUSDT", interval="1m", limit=10)
        assert len(klines) == 10 and klines[-1][0] - klines[0][0] == 9 * 60_000
    finally:
        await close_client(client)


async def test_kline_and_mini_ticker_streams(live: SimulatorProcess) -> None:
    client = await make_python_binance_client(live)
    try:
        manager = make_socket_manager(client, live)
        async with manager.kline_socket("BTCUSDT", "1m") as socket:
            messages = await recv_until(socket, lambda m: m["k"]["x"])
        final = messages[-1]
        assert final["e"] == "kline" and final["k"]["T"] == final["k"]["t"] + 59_999
        assert set(final["k"]) == {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}
        async with manager.symbol_miniticker_socket("ETHUSDT") as socket:
            ticker = (await recv_until(socket, lambda m: True))[0]
        assert set(ticker) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"} and ticker["s"] == "ETHUSDT"
        async with manager.multiplex_socket(["btcusdt@kline_1m", "ethusdt@miniTicker"]) as socket:
            seen = await recv_until(socket, lambda m: m["stream"] == "ethusdt@miniTicker")
        assert all(set(m) == {"stream", "data"} for m in seen)
    finally:
        await close_client(client)


async def test_user_socket_events_match_rest(live: SimulatorProcess) -> None:
    client = await make_python_binance_client(live)
    try:
        manager = make_socket_manager(client, live)
        async with manager.user_socket() as socket:
            order = await client.order_market_buy(symbol="ETHUSDT", quantity="0.05")
            events = await recv_until(socket, lambda m: m["e"] == "outboundAccountPosition")
        reports = [e for e in events if e["e"] == "executionReport" and e["i"] == order["orderId"]]
        assert [r["x"] for r in reports] == ["NEW"] + ["TRADE"] * len(order["fills"])
        assert reports[-1]["X"] == "FILLED" and reports[-1]["z"] == order["executedQty"]
        assert reports[-1]["Z"] == order["cummulativeQuoteQty"] and reports[0]["c"] == order["clientOrderId"]
        assert [(r["t"], r["l"], r["L"], r["n"], r["N"]) for r in reports[1:]] == [
            (f["tradeId"], f["qty"], f["price"], f["commission"], f["commissionAsset"]) for f in order["fills"]
        ]
        position = {b["a"]: b for b in events[-1]["B"]}
        account = {b["asset"]: b for b in (await client.get_account())["balances"]}
        assert position["ETH"]["f"] == account["ETH"]["free"] and position["USDT"]["f"] == account["USDT"]["free"]
    finally:
        await close_client(client)
