"""The matching engine: fills, fees, locks, book depth, time in force, events, persistence."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.exchange_sim.account import Balances, Fees
from services.exchange_sim.errors import ApiError
from services.exchange_sim.matching import Engine, OrderRequest
from services.exchange_sim.symbols import make_spec

D = Decimal
PRICE = D("100000.00")
NOW = 1_800_000_000_000


def engine(depth: str = "2000", slippage: str = "0", seed: int = 0, usdt: str = "10000", btc: str = "1") -> Engine:
    specs = {"BTCUSDT": make_spec("BTCUSDT", 2, PRICE)}
    return Engine(specs, Balances({"USDT": D(usdt), "BTC": D(btc)}), D(depth), D(slippage), seed)


def req(
    side: str = "BUY",
    type_: str = "MARKET",
    qty: str | None = "0.001",
    quote: str | None = None,
    price: str | None = None,
    tif: str | None = None,
    cid: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        "BTCUSDT",
        side,
        type_,
        tif,
        D(qty) if qty else None,
        D(quote) if quote else None,
        D(price) if price else None,
        cid,
    )


def reports(e: Engine) -> list[dict]:
    return [ev for ev in e.drain() if ev["e"] == "executionReport"]


def test_market_buy_fee_in_base_and_sell_fee_in_quote() -> None:
    e = engine()
    order, fills = e.place(req(qty="0.001"), PRICE, NOW)
    assert order.status == "FILLED" and len(fills) == 1
    fill = fills[0]
    assert (fill.price, fill.qty, fill.quote_qty, fill.commission, fill.commission_asset) == (
        PRICE,
        D("0.001"),
        D("100.00000"),
        D("0.00000100"),
        "BTC",
    )
    assert e.balances.free_of("USDT") == D("9900") and e.balances.free_of("BTC") == D("1.000999")
    order, fills = e.place(req("SELL", qty="0.0005"), PRICE, NOW)
    assert (fills[0].commission, fills[0].commission_asset) == (D("0.05"), "USDT")
    assert e.balances.free_of("USDT") == D("9949.95") and e.balances.free_of("BTC") == D("1.000499")


def test_sweep_makes_one_trade_per_level_with_consistent_events() -> None:
    e = engine(depth="2000")  # 10 levels of 200 USDT: 0.002 BTC each at 100000
    order, fills = e.place(req(qty="0.005"), PRICE, NOW)
    assert [(f.price, f.qty) for f in fills] == [
        (D("100000.00"), D("0.002")),
        (D("100000.01"), D("0.002")),
        (D("100000.02"), D("0.001")),
    ]
    events = reports(e)
    assert [(ev["x"], ev["X"]) for ev in events] == [
        ("NEW", "NEW"),
        ("TRADE", "PARTIALLY_FILLED"),
        ("TRADE", "PARTIALLY_FILLED"),
        ("TRADE", "FILLED"),
    ]
    assert [ev["z"] for ev in events[1:]] == ["0.00200000", "0.00400000", "0.00500000"]
    assert [ev["t"] for ev in events[1:]] == [f.trade_id for f in fills]
    assert events[-1]["Z"] == f"{order.cumm_quote:.8f}" and order.cumm_quote == sum(f.quote_qty for f in fills)
    assert all(
        ev["Y"] == f"{f.quote_qty:.8f}" and ev["n"] == f"{f.commission:.8f}" and ev["N"] == "BTC"
        for ev, f in zip(events[1:], fills, strict=True)
    )


def test_market_order_beyond_depth_expires_keeping_the_partial_fill() -> None:
    e = engine(depth="2000")
    order, fills = e.place(req(qty="0.03"), PRICE, NOW)
    assert len(fills) == 10 and order.executed_qty == D("0.02")
    assert (order.status, order.expiry_reason) == ("EXPIRED", "INSUFFICIENT_LIQUIDITY")
    last = reports(e)[-1]
    assert (last["x"], last["X"], last["eR"], last["l"]) == (
        "EXPIRED",
        "EXPIRED",
        "INSUFFICIENT_LIQUIDITY",
        "0.00000000",
    )
    assert order.result(NOW)["expiryReason"] == "INSUFFICIENT_LIQUIDITY"


def test_quote_order_qty_spends_at_most_the_amount() -> None:
    e = engine(depth="2000")
    order, _fills = e.place(req(qty=None, quote="250"), PRICE, NOW)
    assert order.status == "FILLED" and order.orig_qty == order.executed_qty == D("0.00249")
    assert order.cumm_quote == D("200.00000") + D("49.00000490") <= D(250)
    assert order.orig_quote_qty == D(250)


def test_resting_limit_locks_then_fills_as_maker_at_its_price() -> None:
    e = engine()
    order, fills = e.place(req(type_="LIMIT", qty="0.001", price="99000", tif="GTC"), PRICE, NOW)
    assert (order.status, fills) == ("NEW", [])
    assert e.balances.locked_of("USDT") == D("99.000") and e.balances.free_of("USDT") == D("9901")
    assert not e.on_price("BTCUSDT", D("99000.01"), NOW + 1)
    assert e.on_price("BTCUSDT", D("98999.99"), NOW + 2)
    assert order.status == "FILLED" and order.fills[0].price == D(99000) and order.fills[0].is_maker
    assert e.balances.locked_of("USDT") == 0 and e.balances.free_of("USDT") == D("9901")
    trade = next(ev for ev in reports(e) if ev["x"] == "TRADE")
    assert trade["m"] is True and trade["L"] == "99000.00000000" and trade["X"] == "FILLED"


def test_crossing_limit_fills_at_market_and_releases_the_excess_lock() -> None:
    e = engine()
    order, fills = e.place(req(type_="LIMIT", qty="0.001", price="100100", tif="GTC"), PRICE, NOW)
    assert order.status == "FILLED" and fills[0].price == PRICE and not fills[0].is_maker
    assert e.balances.free_of("USDT") == D(9900) and e.balances.locked_of("USDT") == 0


def test_ioc_and_fok() -> None:
    e = engine(depth="2000")
    order, fills = e.place(req(type_="LIMIT", qty="0.005", price="100000.01", tif="IOC"), PRICE, NOW)
    assert order.executed_qty == D("0.004") and order.status == "EXPIRED"
    assert order.expiry_reason == "UNFILLED_IOC_QUANTITY_EXPIRED" and e.balances.locked_of("USDT") == 0
    order, fills = e.place(req(type_="LIMIT", qty="0.005", price="100000.00", tif="FOK"), PRICE, NOW)
    assert fills == [] and order.status == "EXPIRED" and order.expiry_reason == "UNFILLED_FOK_ORDER_EXPIRED"
    assert e.balances.locked_of("USDT") == 0


def test_insufficient_balance_rejects_and_reports() -> None:
    e = engine(usdt="50")
    with pytest.raises(ApiError) as caught:
        e.place(req(qty="0.001"), PRICE, NOW)
    assert (caught.value.code, caught.value.msg) == (-2010, "Account has insufficient balance for requested action.")
    event = reports(e)[0]
    assert (event["x"], event["X"], event["r"]) == ("REJECTED", "REJECTED", "INSUFFICIENT_BALANCES")
    assert e.balances.free_of("USDT") == D(50) and e.orders == {}


def test_cancel_releases_lock_and_client_ids_are_unique_among_open_orders() -> None:
    e = engine()
    order, _ = e.place(req(type_="LIMIT", qty="0.001", price="90000", tif="GTC", cid="mine"), PRICE, NOW)
    with pytest.raises(ApiError) as caught:
        e.place(req(type_="LIMIT", qty="0.001", price="90000", tif="GTC", cid="mine"), PRICE, NOW)
    assert (caught.value.code, caught.value.msg) == (-2010, "Duplicate order sent.")
    e.drain()
    e.cancel(order, "cancel-1", NOW)
    assert e.balances.locked_of("USDT") == 0 and e.balances.free_of("USDT") == D(10000)
    event = reports(e)[0]
    assert (event["x"], event["c"], event["C"]) == ("CANCELED", "cancel-1", "mine")
    with pytest.raises(ApiError) as caught:
        e.cancel(order, "cancel-2", NOW)
    assert caught.value.code == -2011
    e.place(req(type_="LIMIT", qty="0.001", price="90000", tif="GTC", cid="mine"), PRICE, NOW)


def test_limit_maker_that_would_take_is_rejected() -> None:
    e = engine()
    with pytest.raises(ApiError) as caught:  # the best ask is one tick above the walk price
        e.place(req(type_="LIMIT_MAKER", qty="0.001", price="100000.01"), PRICE, NOW)
    assert caught.value.msg == "Order would immediately match and take."
    assert reports(e)[0]["r"] == "WOULD_MATCH_IMMEDIATELY"
    with pytest.raises(ApiError):  # a SELL at the walk price takes the best bid
        e.place(req("SELL", type_="LIMIT_MAKER", qty="0.001", price="100000"), PRICE, NOW)


def test_limit_maker_buy_at_the_bid_rests_and_fills_as_maker_at_the_maker_rate() -> None:
    e = engine()
    e.fees = Fees(maker=D("0.0002"), taker=D("0.001"))
    order, fills = e.place(req(type_="LIMIT_MAKER", qty="0.01", price="100000"), PRICE, NOW)
    assert fills == [] and order.status == "NEW"
    assert e.on_price("BTCUSDT", PRICE, NOW + 1)
    [fill] = order.fills
    assert order.status == "FILLED" and fill.is_maker and fill.price == PRICE
    assert fill.commission == D("0.000002")  # 0.01 BTC x 0.02 %, in base


def test_maker_fill_quote_fills_a_resting_order_in_parts() -> None:
    e = engine()
    e.maker_fill_quote = D("300")  # 0.003 BTC at 100000 per walk step
    order, _ = e.place(req(type_="LIMIT_MAKER", qty="0.01", price="100000"), PRICE, NOW)
    e.on_price("BTCUSDT", PRICE, NOW + 1)
    assert order.status == "PARTIALLY_FILLED" and order.executed_qty == D("0.003")
    for step in range(2, 5):
        e.on_price("BTCUSDT", PRICE, NOW + step)
    assert order.status == "FILLED" and [f.qty for f in order.fills] == [D("0.003")] * 3 + [D("0.001")]


def test_slippage_is_adverse_and_deterministic_per_seed() -> None:
    def prices(seed: int) -> list[Decimal]:
        e = engine(slippage="10", seed=seed)
        return [e.place(req(side, qty="0.001"), PRICE, NOW)[1][0].price for side in ("BUY", "SELL") * 3]

    first = prices(7)
    assert first == prices(7) and first != prices(8)
    assert all(p >= PRICE for p in first[::2]) and all(p <= PRICE for p in first[1::2])
    assert max(abs(p - PRICE) for p in first) <= PRICE * D("0.001") + D("0.01")


def test_state_round_trip() -> None:
    e = engine()
    e.place(req(qty="0.002"), PRICE, NOW)
    e.place(req(type_="LIMIT", qty="0.001", price="90000", tif="GTC", cid="rest"), PRICE, NOW)
    saved = json.loads(json.dumps(e.to_state()))
    again = engine(usdt="1", btc="0")
    again.load_state(saved)
    assert again.balances.to_state() == e.balances.to_state()
    assert [o.query() for o in again.orders.values()] == [o.query() for o in e.orders.values()]
    assert [t.trade_row() for t in again.trades] == [t.trade_row() for t in e.trades]
    assert [o.order_id for o in again.open_orders()] == [2] and again.next_order_id == 3
    assert again.find("BTCUSDT", None, "rest") is again.orders[2]
