"""Signed REST endpoints: account, orders, open orders, trades."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from . import errors
from .decimals import fmt8
from .filters import parse_order
from .orders import Fill, Order
from .params import Params
from .rest import Route
from .walk import wall_ms

if TYPE_CHECKING:
    from .app import Simulator

DAY_MS = 86_400_000
CANCEL_RESTRICTIONS = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}


def account(sim: Simulator, params: Params) -> object:
    fees = sim.engine.fees
    omit = (params.get("omitZeroBalances") or "").lower() == "true"
    return {
        "makerCommission": int(fees.maker * 10_000),
        "takerCommission": int(fees.taker * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt8(fees.maker),
            "taker": fmt8(fees.taker),
            "buyer": fmt8(Decimal(0)),
            "seller": fmt8(Decimal(0)),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": sim.engine.update_time,
        "accountType": "SPOT",
        "balances": sim.engine.balances.rows(omit, sim.assets),
        "permissions": ["SPOT"],
        "uid": 100000001,
    }


def _symbol(sim: Simulator, params: Params) -> str:
    symbol = params.require("symbol")
    if symbol not in sim.specs:
        raise errors.bad_symbol()
    return symbol


def new_order(sim: Simulator, params: Params) -> object:
    """Place an order; every ``newClientOrderId`` received is recorded for the admin state."""
    client_id = params.get("newClientOrderId")
    if client_id is not None:
        sim.engine.received_client_ids.append(client_id)
        sim.received_wall_ms.setdefault(client_id, wall_ms())
    sim.sync_market()
    symbol = params.get("symbol")
    average = sim.market.avg_price(symbol)[0] if symbol in sim.specs else None
    request, resp_type = parse_order(params, sim.specs, average)
    now = sim.exchange_time()
    order, fills = sim.engine.place(request, sim.market.price(request.symbol), now)
    return order.response(resp_type, now, fills)


def test_order(sim: Simulator, params: Params) -> object:
    """Validate like a new order without executing it."""
    symbol = params.get("symbol")
    average = sim.market.avg_price(symbol)[0] if symbol in sim.specs else None
    parse_order(params, sim.specs, average)
    if (params.get("computeCommissionRates") or "").lower() != "true":
        return {}
    zero, fees = fmt8(Decimal(0)), sim.engine.fees
    return {
        "standardCommissionForOrder": {"maker": fmt8(fees.maker), "taker": fmt8(fees.taker)},
        "specialCommissionForOrder": {"maker": zero, "taker": zero},
        "taxCommissionForOrder": {"maker": zero, "taker": zero},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.25000000",
        },
    }


def _find(sim: Simulator, params: Params) -> tuple[str, Order | None]:
    symbol = _symbol(sim, params)
    order_id, client_id = params.long("orderId"), params.get("origClientOrderId")
    if order_id is None and client_id is None:
        raise errors.either_mandatory("orderId", "origClientOrderId")
    return symbol, sim.engine.find(symbol, order_id, client_id)


def query_order(sim: Simulator, params: Params) -> object:
    _, order = _find(sim, params)
    if order is None:
        raise errors.no_such_order()
    return order.query()


def cancel_order(sim: Simulator, params: Params) -> object:
    restriction = params.get("cancelRestrictions")
    if restriction is not None and restriction not in CANCEL_RESTRICTIONS:
        raise errors.ApiError(-1145, "Invalid cancelRestrictions")
    cancel_id = params.client_id("newClientOrderId") or sim.engine.new_client_id()
    _, order = _find(sim, params)
    if order is None or not order.is_open:
        raise errors.unknown_order()
    if restriction is not None and order.status != CANCEL_RESTRICTIONS[restriction]:
        raise errors.ApiError(-2011, "Order was not canceled due to cancel restrictions.")
    now = sim.exchange_time()
    sim.engine.cancel(order, cancel_id, now)
    return order.cancel_response(cancel_id, now)


def open_orders(sim: Simulator, params: Params) -> object:
    symbol = params.get("symbol")
    if symbol is not None and symbol not in sim.specs:
        raise errors.bad_symbol()
    return [o.query() for o in sim.engine.open_orders(symbol)]


def cancel_open_orders(sim: Simulator, params: Params) -> object:
    symbol = _symbol(sim, params)
    orders = sim.engine.open_orders(symbol)
    if not orders:
        raise errors.unknown_order()
    now = sim.exchange_time()
    result: list[object] = []
    cancel_id = sim.engine.new_client_id()  # one id for the whole request, as Binance answers
    for order in orders:
        if not order.is_open:
            continue  # a leg of an order list cancelled with its other leg
        if order.order_list_id == -1:
            sim.engine.cancel(order, cancel_id, now)
            result.append(order.cancel_response(cancel_id, now))
            continue
        order_list = sim.engine.lists[order.order_list_id]
        legs = sim.engine.cancel_list(order_list, cancel_id, now)
        result.append(order_list.response(sim.engine.orders, [leg.cancel_response(cancel_id, now) for leg in legs]))
    return result


def _window(params: Params) -> tuple[int | None, int | None]:
    start, end = params.time_ms("startTime", round_up=True), params.time_ms("endTime")
    if start is not None and end is not None and end - start > DAY_MS:
        raise errors.lookup_too_long()
    return start, end


def _select[T: (Order, Fill)](
    items: Sequence[T], key_id: int | None, start: int | None, end: int | None, limit: int
) -> list[T]:
    """Binance paging: from an id or startTime oldest first, otherwise the most recent ``limit``."""
    chosen = [i for i in items if (start is None or i.time >= start) and (end is None or i.time <= end)]
    if key_id is not None or start is not None:
        return chosen[:limit]
    return chosen[-limit:]


def my_trades(sim: Simulator, params: Params) -> object:
    symbol = _symbol(sim, params)
    order_id, from_id = params.long("orderId"), params.long("fromId")
    start, end = _window(params)
    if from_id is not None and (start is not None or end is not None):
        raise errors.bad_combo()
    if order_id is not None and (start is not None or end is not None):
        raise errors.bad_combo()
    trades = [
        t
        for t in sim.engine.trades
        if t.symbol == symbol
        and (order_id is None or t.order_id == order_id)
        and (from_id is None or t.trade_id >= from_id)
    ]
    return [t.trade_row() for t in _select(trades, from_id, start, end, params.limit())]


def all_orders(sim: Simulator, params: Params) -> object:
    symbol = _symbol(sim, params)
    order_id = params.long("orderId")
    start, end = _window(params)
    orders = [
        o
        for o in sorted(sim.engine.orders.values(), key=lambda o: o.order_id)
        if o.symbol == symbol and (order_id is None or o.order_id >= order_id)
    ]
    return [o.query() for o in _select(orders, order_id, start, end, params.limit())]


def order_rate_limit(sim: Simulator, params: Params) -> object:
    now, limiter = wall_ms(), sim.limiter  # rate limits count real seconds
    return [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": limiter.order_limit_10s,
            "count": limiter.orders_10s.current(now),
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 200_000,
            "count": limiter.orders_1d.current(now),
        },
    ]


ROUTES = [
    Route("GET", "account", account, 20, signed=True),
    Route("POST", "order", new_order, 1, signed=True, order=True),
    Route("POST", "order/test", test_order, lambda p: 20 if p.has("computeCommissionRates") else 1, signed=True),
    Route("GET", "order", query_order, 4, signed=True),
    Route("DELETE", "order", cancel_order, 1, signed=True),
    Route("GET", "openOrders", open_orders, lambda p: 6 if p.has("symbol") else 80, signed=True),
    Route("DELETE", "openOrders", cancel_open_orders, 1, signed=True),
    Route("GET", "myTrades", my_trades, lambda p: 5 if p.has("orderId") else 20, signed=True),
    Route("GET", "allOrders", all_orders, 20, signed=True),
    Route("GET", "rateLimit/order", order_rate_limit, 40, signed=True),
]
