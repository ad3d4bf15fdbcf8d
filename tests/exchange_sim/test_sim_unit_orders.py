"""Stop orders and OCO lists in the matching engine and the OCO parameter checks (pure)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.exchange_sim.account import Balances
from services.exchange_sim.errors import ApiError
from services.exchange_sim.matching import Engine, OrderRequest
from services.exchange_sim.oco import parse_oco
from services.exchange_sim.params import Params
from services.exchange_sim.symbols import make_spec

D = Decimal
PRICE = D("100000.00")
NOW = 1_800_000_000_000
SPECS = {"BTCUSDT": make_spec("BTCUSDT", 2, PRICE)}


def engine(usdt: str = "10000", btc: str = "1") -> Engine:
    return Engine(SPECS, Balances({"USDT": D(usdt), "BTC": D(btc)}), D(1_000_000), D(0), 0)


def req(
    side: str,
    type_: str,
    qty: str = "0.01",
    price: str | None = None,
    stop: str | None = None,
    tif: str | None = None,
    cid: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        "BTCUSDT", side, type_, tif, D(qty), None, D(price) if price else None, cid, D(stop) if stop else None
    )


def sell_oco(e: Engine, stop: str = "99000", limit: str = "98900", take: str = "101000"):
    below = req("SELL", "STOP_LOSS_LIMIT", price=limit, stop=stop, tif="GTC", cid="stop-leg")
    above = req("SELL", "LIMIT_MAKER", price=take, cid="take-leg")
    return e.place_oco("my-list", below, above, PRICE, NOW)


def kinds(events: list[dict]) -> list[tuple]:
    return [
        (ev["e"], ev.get("x") or ev.get("l"), ev.get("X") or ev.get("L"), ev.get("eR"))
        for ev in events
        if ev["e"] != "outboundAccountPosition"
    ]


def test_stop_loss_waits_off_the_book_then_sells_at_its_stop() -> None:
    e = engine()
    order, fills = e.place(req("SELL", "STOP_LOSS", stop="99000"), PRICE, NOW)
    assert (order.status, order.working, fills) == ("NEW", False, [])
    assert e.balances.locked_of("BTC") == D("0.01")
    new = e.drain()[0]
    assert (new["x"], new["w"], new["P"], "W" in new) == ("NEW", False, "99000.00000000", False)
    assert order.result(NOW)["workingTime"] == -1 and order.query()["isWorking"] is False
    assert not e.on_price("BTCUSDT", D("99000.01"), NOW + 1)
    assert e.on_price("BTCUSDT", D("98500"), NOW + 2)  # the walk went through the stop
    assert order.status == "FILLED" and [(f.price, f.is_maker) for f in order.fills] == [(D("99000.00"), False)]
    assert order.working_time == NOW + 2 and e.balances.locked_of("BTC") == 0
    assert e.balances.free_of("USDT") == D(10000) + D("990") - D("0.99")
    assert kinds(e.drain()) == [("executionReport", "NEW", "NEW", None), ("executionReport", "TRADE", "FILLED", None)]


def test_stop_that_would_trigger_at_once_is_rejected() -> None:
    e = engine()
    with pytest.raises(ApiError) as caught:
        e.place(req("SELL", "STOP_LOSS", stop="100000"), PRICE, NOW)
    assert (caught.value.code, caught.value.msg) == (-2010, "Order would trigger immediately.")
    assert e.drain()[0]["r"] == "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY" and not e.open_orders()
    with pytest.raises(ApiError):
        e.place(req("BUY", "TAKE_PROFIT_LIMIT", price="100100", stop="100500", tif="GTC"), PRICE, NOW)


def test_take_profit_limit_buy_takes_up_to_its_limit_and_stop_limit_rests_when_not_crossing() -> None:
    e = engine()
    order, _ = e.place(req("BUY", "TAKE_PROFIT_LIMIT", price="99600", stop="99500", tif="GTC"), PRICE, NOW)
    assert e.balances.locked_of("USDT") == D("996.00")
    e.on_price("BTCUSDT", D("99400"), NOW + 1)
    assert order.status == "FILLED" and order.fills[0].price == D("99500.00") and e.balances.locked_of("USDT") == 0
    resting, _ = e.place(req("SELL", "STOP_LOSS_LIMIT", price="99500", stop="99000", tif="GTC"), PRICE, NOW)
    e.on_price("BTCUSDT", D("98000"), NOW + 2)  # triggered, but a SELL at 99500 does not cross 99000
    assert (resting.status, resting.working, resting.fills) == ("NEW", True, [])
    e.on_price("BTCUSDT", D("99500"), NOW + 3)
    assert resting.status == "FILLED" and resting.fills[0].is_maker and resting.fills[0].price == D("99500")


def test_algo_orders_are_limited_per_symbol() -> None:
    e = engine()
    for _ in range(5):
        e.place(req("SELL", "STOP_LOSS", qty="0.001", stop="90000"), PRICE, NOW)
    with pytest.raises(ApiError) as caught:
        e.place(req("SELL", "STOP_LOSS", qty="0.001", stop="90000"), PRICE, NOW)
    assert caught.value.msg == "Filter failure: MAX_NUM_ALGO_ORDERS"
    e.place(req("SELL", "LIMIT", qty="0.001", price="110000", tif="GTC"), PRICE, NOW)  # not an algo order


def test_oco_locks_once_and_the_limit_leg_fill_expires_the_stop() -> None:
    e = engine()
    order_list = sell_oco(e)
    assert e.balances.locked_of("BTC") == D("0.01") and e.balances.free_of("BTC") == D("0.99")
    stop, take = (e.orders[i] for i in order_list.order_ids)
    assert (stop.order_list_id, take.order_list_id, stop.working, take.working) == (0, 0, False, True)
    placed = kinds(e.drain())
    assert placed == [
        ("executionReport", "NEW", "NEW", None),
        ("executionReport", "NEW", "NEW", None),
        ("listStatus", "EXEC_STARTED", "EXECUTING", None),
    ]
    e.on_price("BTCUSDT", D("101000"), NOW + 5)
    assert (take.status, stop.status, stop.expiry_reason) == ("FILLED", "EXPIRED", "OCO_TRIGGER")
    assert take.fills[0].price == D(101000) and take.fills[0].is_maker and take.fills[0].order_list_id == 0
    assert e.balances.locked_of("BTC") == 0 and e.balances.free_of("BTC") == D("0.99")
    assert kinds(e.drain()) == [
        ("executionReport", "EXPIRED", "EXPIRED", "OCO_TRIGGER"),
        ("executionReport", "TRADE", "FILLED", None),
        ("listStatus", "ALL_DONE", "ALL_DONE", None),
    ]
    assert not order_list.is_open and not e.open_lists() and not e.open_orders()


def test_oco_stop_leg_trigger_expires_the_limit_leg() -> None:
    e = engine()
    order_list = sell_oco(e)
    stop, take = (e.orders[i] for i in order_list.order_ids)
    e.drain()
    e.on_price("BTCUSDT", D("98950"), NOW + 5)
    assert (stop.status, take.status, take.expiry_reason) == ("FILLED", "EXPIRED", "OCO_TRIGGER")
    assert stop.fills[0].price == D("99000.00") and e.balances.locked_of("BTC") == 0
    assert kinds(e.drain()) == [
        ("executionReport", "EXPIRED", "EXPIRED", "OCO_TRIGGER"),
        ("executionReport", "NEW", "NEW", None),
        ("executionReport", "TRADE", "FILLED", None),
        ("listStatus", "ALL_DONE", "ALL_DONE", None),
    ]


def test_cancelling_a_leg_cancels_the_list_and_releases_the_lock() -> None:
    e = engine()
    order_list = sell_oco(e)
    stop, take = (e.orders[i] for i in order_list.order_ids)
    e.cancel(take, "bye", NOW + 1)
    assert (stop.status, take.status, order_list.list_order_status) == ("CANCELED", "CANCELED", "ALL_DONE")
    assert e.balances.locked_of("BTC") == 0 and e.balances.free_of("BTC") == D(1)
    with pytest.raises(ApiError):
        e.cancel_list(order_list, "again", NOW + 2)


def test_oco_refusals_and_persistence() -> None:
    e = engine(btc="0.005")
    with pytest.raises(ApiError) as caught:
        sell_oco(e)
    assert caught.value.msg == "Account has insufficient balance for requested action." and not e.lists
    e = engine()
    sell_oco(e)
    with pytest.raises(ApiError) as caught:
        e.place_oco(
            "my-list", req("SELL", "STOP_LOSS", stop="99000"), req("SELL", "LIMIT_MAKER", price="101000"), PRICE, NOW
        )
    assert caught.value.msg == "Duplicate order sent."
    restored = engine()
    restored.load_state(json.loads(json.dumps(e.to_state())))
    assert [ol.list_client_order_id for ol in restored.open_lists()] == ["my-list"]
    restored.on_price("BTCUSDT", D("98000"), NOW + 9)
    assert restored.balances.locked_of("BTC") == 0 and not restored.open_lists() and restored.next_list_id == 1


def oco_error(**params: str) -> tuple[int, str]:
    base = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.01",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "101000",
        "belowType": "STOP_LOSS_LIMIT",
        "belowPrice": "98900",
        "belowStopPrice": "99000",
        "belowTimeInForce": "GTC",
    }
    base.update(params)
    with pytest.raises(ApiError) as caught:
        parse_oco(Params({k: v for k, v in base.items() if v != "-"}), SPECS, PRICE, PRICE)
    return caught.value.code, caught.value.msg


def test_oco_parameter_checks() -> None:
    assert oco_error(aboveType="LIMIT") == (-1158, "Order type not supported in OCO.")
    assert oco_error(aboveType="NOPE") == (-1116, "Invalid orderType.")
    assert oco_error(belowType="LIMIT_MAKER", belowStopPrice="-", belowTimeInForce="-") == (
        -1168,
        "At least one OCO order must be contingent.",
    )
    assert oco_error(aboveType="STOP_LOSS", abovePrice="-", aboveStopPrice="101000") == (
        -1197,
        "A stop loss order in a sell OCO must be below.",
    )
    assert oco_error(side="BUY") == (-1165, "A limit order in a buy OCO must be below.")
    assert oco_error(belowTimeInForce="-") == (
        -1102,
        "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or malformed.",
    )
    assert oco_error(belowStopPrice="-") == (
        -1102,
        "Param 'belowStopPrice' or 'belowTrailingDelta' must be sent, but both were empty/null!",
    )
    assert oco_error(aboveStopPrice="101000") == (-1106, "Parameter 'aboveStopPrice' sent when not required.")
    assert oco_error(abovePrice="99500") == (-2010, "The relationship of the prices for the orders is not correct.")
    assert oco_error(belowStopPrice="100001") == (
        -2010,
        "The relationship of the prices for the orders is not correct.",
    )
    assert oco_error(abovePrice="101000.001") == (-1013, "Filter failure: PRICE_FILTER")
    assert oco_error(quantity="-") == (
        -1102,
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    )
    request = parse_oco(
        Params(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "quantity": "0.01",
                "aboveType": "STOP_LOSS",
                "aboveStopPrice": "101000",
                "belowType": "LIMIT_MAKER",
                "belowPrice": "99000",
                "listClientOrderId": "L1",
            }
        ),
        SPECS,
        PRICE,
        PRICE,
    )
    assert (request.below.type, request.above.type, request.resp_type, request.client_ids) == (
        "LIMIT_MAKER",
        "STOP_LOSS",
        "RESULT",
        ["L1"],
    )
