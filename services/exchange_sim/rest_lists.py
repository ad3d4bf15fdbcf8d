"""Signed REST endpoints of order lists: place an OCO, cancel, query one, open ones, all."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from . import errors
from .oco import parse_oco
from .orderlists import OrderList
from .params import Params
from .rest import Route

if TYPE_CHECKING:
    from .app import Simulator

DAY_MS = 86_400_000


def new_oco(sim: Simulator, params: Params) -> object:
    """``POST /api/v3/orderList/oco``; the list's and legs' client ids are recorded like newClientOrderId."""
    for name in ("listClientOrderId", "belowClientOrderId", "aboveClientOrderId"):
        if (client_id := params.get(name)) is not None:
            sim.engine.received_client_ids.append(client_id)
    sim.sync_market()
    symbol = params.get("symbol")
    average = sim.market.avg_price(symbol)[0] if symbol in sim.specs else None
    last = sim.market.price(symbol) if symbol in sim.specs else None
    request = parse_oco(params, sim.specs, average or Decimal(0), last or Decimal(0))
    now = sim.exchange_time()
    order_list = sim.engine.place_oco(
        request.list_client_order_id, request.below, request.above, sim.market.price(request.below.symbol), now
    )
    legs = [sim.engine.orders[i] for i in order_list.order_ids]
    return order_list.response(sim.engine.orders, [leg.response(request.resp_type, now, []) for leg in legs])


def _find_list(sim: Simulator, params: Params, client_name: str) -> OrderList | None:
    list_id, client_id = params.long("orderListId"), params.get(client_name)
    if list_id is None and client_id is None:
        raise errors.either_mandatory("orderListId", client_name)
    return sim.engine.find_list(list_id, client_id)


def cancel_list(sim: Simulator, params: Params) -> object:
    """``DELETE /api/v3/orderList``: both legs CANCELED, one ``newClientOrderId`` for the cancel."""
    symbol = params.require("symbol")
    if symbol not in sim.specs:
        raise errors.bad_symbol()
    cancel_id = params.client_id("newClientOrderId") or sim.engine.new_client_id()
    order_list = _find_list(sim, params, "listClientOrderId")
    if order_list is None or order_list.symbol != symbol or not order_list.is_open:
        raise errors.ApiError(-2011, "Unknown order list sent.")
    now = sim.exchange_time()
    legs = sim.engine.cancel_list(order_list, cancel_id, now)
    return order_list.response(sim.engine.orders, [leg.cancel_response(cancel_id, now) for leg in legs])


def query_list(sim: Simulator, params: Params) -> object:
    order_list = _find_list(sim, params, "origClientOrderId")
    if order_list is None:
        raise errors.ApiError(-2013, "Order list does not exist.")
    return order_list.summary(sim.engine.orders)


def open_lists(sim: Simulator, params: Params) -> object:
    return [ol.summary(sim.engine.orders) for ol in sim.engine.open_lists()]


def all_lists(sim: Simulator, params: Params) -> object:
    """Oldest first from ``fromId`` or ``startTime``, else the newest ``limit`` (24 h window at most)."""
    from_id = params.long("fromId")
    start, end = params.time_ms("startTime", round_up=True), params.time_ms("endTime")
    if from_id is not None and (start is not None or end is not None):
        raise errors.bad_combo()
    if start is not None and end is not None and end - start > DAY_MS:
        raise errors.lookup_too_long()
    lists = sorted(sim.engine.lists.values(), key=lambda ol: ol.order_list_id)
    chosen = [
        ol
        for ol in lists
        if (from_id is None or ol.order_list_id >= from_id)
        and (start is None or sim.engine.orders[ol.order_ids[0]].time >= start)
        and (end is None or sim.engine.orders[ol.order_ids[0]].time <= end)
    ]
    limit = params.limit()
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return [ol.summary(sim.engine.orders) for ol in chosen]


ROUTES = [
    Route("POST", "orderList/oco", new_oco, 1, signed=True, order=True, order_count=2),
    Route("DELETE", "orderList", cancel_list, 1, signed=True),
    Route("GET", "orderList", query_list, 4, signed=True),
    Route("GET", "openOrderList", open_lists, 6, signed=True),
    Route("GET", "allOrderList", all_lists, 20, signed=True),
]
