"""OCO and stop orders end to end: python-binance's and ccxt's own calls against a real simulator
whose BTCUSDT falls 10 USDT a candle and ETHUSDT rises 1 USDT a candle, so the walk reaches a
stop or a take-profit within a few seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException

from shared.binance_client import close_client
from tests.exchange_sim.conftest import Row, write_candles
from tests.support.simulator import (
    SimulatorProcess,
    make_ccxt_client,
    make_python_binance_client,
    make_socket_manager,
    start_simulator,
)

pytestmark = pytest.mark.integration
D = Decimal
START = 1_700_000_000_000
CENT = D("0.01")


def trend(start: float, step: float, count: int = 4000) -> list[Row]:
    """Candles moving ``step`` per candle, each with a small wick on both sides."""
    rows: list[Row] = []
    for i in range(count):
        o, c = start + i * step, start + (i + 1) * step
        rows.append(
            (START + i * 60_000, f"{o:.2f}", f"{max(o, c) + 0.2:.2f}", f"{min(o, c) - 0.2:.2f}", f"{c:.2f}", "3.5")
        )
    return rows


@pytest.fixture(scope="module")
def trending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder: Path = tmp_path_factory.mktemp("trending")
    data = [
        write_candles(folder / "BTCUSDT_1m_fall.csv", trend(100_000, -10)),
        write_candles(folder / "ETHUSDT_1m_rise.csv", trend(2_000, 1)),
    ]
    with start_simulator(folder, data=data, speed=60, history=10, balances="USDT=100000,BTC=1,ETH=10") as process:
        yield process


async def until(predicate: Any, timeout: float = 20.0) -> Any:
    """Poll an async ``predicate`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)
    return result


async def recv_until(socket: Any, predicate: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            message = await socket.recv()
            seen.append(message)
            if predicate(message):
                return

    await asyncio.wait_for(read(), timeout)
    return seen


def price_of(ticker: dict[str, Any]) -> Decimal:
    return D(ticker["price"])


async def test_python_binance_oco_stop_leg_fills_and_the_take_profit_expires(trending: SimulatorProcess) -> None:
    client = await make_python_binance_client(trending)
    try:
        manager = make_socket_manager(client, trending)
        async with manager.user_socket() as socket:
            last = price_of(await client.get_symbol_ticker(symbol="BTCUSDT"))
            stop = (last - 25).quantize(CENT)
            placed = await client.create_oco_order(
                symbol="BTCUSDT",
                side="SELL",
                quantity="0.01",
                aboveType="LIMIT_MAKER",
                abovePrice=f"{last + 2000:.2f}",
                belowType="STOP_LOSS_LIMIT",
                belowStopPrice=f"{stop:f}",
                belowPrice=f"{stop - 100:f}",
                belowTimeInForce="GTC",
                belowClientOrderId="oco-stop-1",
                aboveClientOrderId="oco-take-1",
            )
            assert (placed["contingencyType"], placed["listStatusType"], placed["listOrderStatus"]) == (
                "OCO",
                "EXEC_STARTED",
                "EXECUTING",
            )
            assert placed["listClientOrderId"].startswith("x-HNA2TXFJ")
            reports = {r["clientOrderId"]: r for r in placed["orderReports"]}
            assert reports["oco-stop-1"]["type"] == "STOP_LOSS_LIMIT" and reports["oco-stop-1"]["workingTime"] == -1
            assert (
                reports["oco-stop-1"]["stopPrice"] == f"{stop:.8f}" and reports["oco-take-1"]["type"] == "LIMIT_MAKER"
            )
            assert [o["clientOrderId"] for o in placed["orders"]] == ["oco-stop-1", "oco-take-1"]
            list_id = placed["orderListId"]
            assert [o["orderListId"] for o in await client.get_open_oco_orders()] == [list_id]
            account = {b["asset"]: b for b in (await client.get_account())["balances"]}
            assert D(account["BTC"]["locked"]) == D("0.01")
            events = await recv_until(socket, lambda m: m["e"] == "listStatus" and m["L"] == "ALL_DONE")
        ours = [e for e in events if e.get("g") == list_id]
        assert [(e["e"], e.get("c") if e["e"] == "executionReport" else e["l"], e.get("x")) for e in ours] == [
            ("executionReport", "oco-stop-1", "NEW"),
            ("executionReport", "oco-take-1", "NEW"),
            ("listStatus", "EXEC_STARTED", None),
            ("executionReport", "oco-take-1", "EXPIRED"),
            ("executionReport", "oco-stop-1", "NEW"),
            ("executionReport", "oco-stop-1", "TRADE"),
            ("listStatus", "ALL_DONE", None),
        ]
        assert ours[3]["eR"] == "OCO_TRIGGER" and ours[5]["X"] == "FILLED" and ours[5]["L"] == f"{stop:.8f}"
        assert [o["c"] for o in ours[-1]["O"]] == ["oco-stop-1", "oco-take-1"]
        done = await client.v3_get_order_list(orderListId=list_id)
        assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
        leg = await client.get_order(symbol="BTCUSDT", origClientOrderId="oco-stop-1")
        assert (leg["status"], leg["orderListId"], leg["isWorking"]) == ("FILLED", list_id, True)
        assert (await client.get_order(symbol="BTCUSDT", origClientOrderId="oco-take-1"))["status"] == "EXPIRED"
        trades = await client.get_my_trades(symbol="BTCUSDT", orderId=leg["orderId"])
        assert [(t["orderListId"], t["price"], t["isMaker"]) for t in trades] == [(list_id, f"{stop:.8f}", False)]
        assert await client.get_open_oco_orders() == []
        assert list_id in [o["orderListId"] for o in await client.v3_get_all_order_list()]
    finally:
        await close_client(client)


async def test_python_binance_oco_take_profit_leg_and_cancel(trending: SimulatorProcess) -> None:
    client = await make_python_binance_client(trending)
    try:
        last = price_of(await client.get_symbol_ticker(symbol="ETHUSDT"))
        placed = await client.order_oco_sell(
            symbol="ETHUSDT",
            quantity="0.5",
            aboveType="LIMIT_MAKER",
            abovePrice=f"{last + 3:.2f}",
            belowType="STOP_LOSS",
            belowStopPrice=f"{last - 300:.2f}",
            newOrderRespType="FULL",
        )
        take_id = placed["orders"][1]["orderId"]
        assert all(r["fills"] == [] for r in placed["orderReports"])
        take = await until(lambda: _filled(client, "ETHUSDT", take_id))
        assert take["price"] == f"{last + 3:.8f}" and take["executedQty"] == "0.50000000"
        stop = await client.get_order(symbol="ETHUSDT", orderId=placed["orders"][0]["orderId"])
        assert (stop["status"], stop["type"], stop["stopPrice"]) == ("EXPIRED", "STOP_LOSS", f"{last - 300:.8f}")

        last = price_of(await client.get_symbol_ticker(symbol="ETHUSDT"))
        resting = await client.create_oco_order(
            symbol="ETHUSDT",
            side="BUY",
            quantity="0.5",
            aboveType="STOP_LOSS_LIMIT",
            aboveStopPrice=f"{last + 500:.2f}",
            abovePrice=f"{last + 510:.2f}",
            aboveTimeInForce="GTC",
            belowType="LIMIT_MAKER",
            belowPrice=f"{last - 500:.2f}",
            listClientOrderId="buy-oco",
        )
        account = {b["asset"]: b for b in (await client.get_account())["balances"]}
        assert D(account["USDT"]["locked"]) == ((last + 510) * D("0.5")).quantize(D("1e-8"))  # the larger leg
        cancelled = await client.v3_delete_order_list(symbol="ETHUSDT", listClientOrderId="buy-oco")
        assert (cancelled["listStatusType"], cancelled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
        assert {r["status"] for r in cancelled["orderReports"]} == {"CANCELED"}
        assert D({b["asset"]: b for b in (await client.get_account())["balances"]}["USDT"]["locked"]) == 0
        assert resting["orderListId"] not in [o["orderListId"] for o in await client.get_open_oco_orders()]
        with pytest.raises(BinanceAPIException) as caught:
            await client.v3_delete_order_list(symbol="ETHUSDT", listClientOrderId="buy-oco")
        assert caught.value.code == -2011
        with pytest.raises(BinanceAPIException) as caught:
            await client.create_oco_order(
                symbol="ETHUSDT",
                side="SELL",
                quantity="0.5",
                aboveType="LIMIT_MAKER",
                abovePrice=f"{last - 10:.2f}",
                belowType="STOP_LOSS",
                belowStopPrice=f"{last - 20:.2f}",
            )
        assert (caught.value.code, caught.value.message) == (
            -2010,
            "The relationship of the prices for the orders is not correct.",
        )
    finally:
        await close_client(client)


async def _filled(client: Any, symbol: str, order_id: int) -> dict[str, Any] | None:
    order = await client.get_order(symbol=symbol, orderId=order_id)
    return order if order["status"] == "FILLED" else None


async def test_ccxt_oco_and_stop_orders(trending: SimulatorProcess) -> None:
    exchange = make_ccxt_client(trending)
    try:
        await exchange.load_markets()
        assert exchange.markets["BTC/USDT"]["info"]["ocoAllowed"] is True
        last = D(str((await exchange.fetch_ticker("BTC/USDT"))["last"]))
        placed = await exchange.private_post_orderlist_oco(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "quantity": "0.002",
                "aboveType": "LIMIT_MAKER",
                "abovePrice": f"{last + 3000:.2f}",
                "belowType": "STOP_LOSS",
                "belowStopPrice": f"{last - 25:.2f}",
            }
        )
        assert placed["listClientOrderId"].startswith("x-TKT5PX2F")
        assert all(o["clientOrderId"].startswith("x-TKT5PX2F") for o in placed["orders"])
        stop_id = str(placed["orders"][0]["orderId"])
        stop = await until(lambda: _ccxt_closed(exchange, stop_id, "BTC/USDT"))
        assert stop["filled"] == 0.002 and stop["info"]["type"] == "STOP_LOSS"
        listed = await exchange.private_get_orderlist({"orderListId": placed["orderListId"]})
        assert listed["listOrderStatus"] == "ALL_DONE"

        last = D(str((await exchange.fetch_ticker("BTC/USDT"))["last"]))
        single = await exchange.create_order(
            "BTC/USDT", "limit", "sell", 0.001, float(last - 200), {"stopLossPrice": float(last - 150)}
        )
        assert single["info"]["clientOrderId"].startswith("x-TKT5PX2F")
        info = (await exchange.fetch_order(single["id"], "BTC/USDT"))["info"]
        assert (info["type"], info["stopPrice"], info["isWorking"]) == ("STOP_LOSS_LIMIT", f"{last - 150:.8f}", False)
        resting = await exchange.private_post_orderlist_oco(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "quantity": "0.002",
                "aboveType": "LIMIT_MAKER",
                "abovePrice": f"{last + 3000:.2f}",
                "belowType": "STOP_LOSS",
                "belowStopPrice": f"{last - 5000:.2f}",
            }
        )
        open_lists = await exchange.private_get_openorderlist()
        assert [o["orderListId"] for o in open_lists] == [resting["orderListId"]]
        cancelled = await exchange.private_delete_orderlist(
            {"symbol": "BTCUSDT", "orderListId": resting["orderListId"]}
        )
        assert cancelled["listOrderStatus"] == "ALL_DONE"
        done = await until(lambda: _ccxt_closed(exchange, single["id"], "BTC/USDT"))
        assert done["info"]["executedQty"] == "0.00100000"  # the single stop-limit filled as the price fell
    finally:
        await exchange.close()


async def _ccxt_closed(exchange: Any, order_id: str, symbol: str) -> dict[str, Any] | None:
    order = await exchange.fetch_order(order_id, symbol)
    return order if order["status"] == "closed" else None
