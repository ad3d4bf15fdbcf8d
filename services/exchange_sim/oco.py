"""``POST /api/v3/orderList/oco`` parameters: leg types, per-leg parameters, filters and prices (pure).

An OCO has an above and a below order. SELL: the stop-loss leg (STOP_LOSS / STOP_LOSS_LIMIT) is
below the last price and the other (LIMIT_MAKER / TAKE_PROFIT / TAKE_PROFIT_LIMIT) above it; BUY
is the mirror image. Errors follow errors.md (-1158, -1165/-1166, -1168, -1196..-1199, -2010).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from . import errors
from .filters import ALL_TYPES, SIDES, TIME_IN_FORCE, check_combination, check_filters
from .matching import OrderRequest
from .params import Params
from .symbols import SymbolSpec

OCO_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
STOP_LOSS_KINDS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
_WRONG_SIDE = {  # (side, leg, type kind) -> error when a leg sits on the wrong side of the price
    ("SELL", "above", "stop"): (-1197, "A stop loss order in a sell OCO must be below."),
    ("SELL", "below", "limit"): (-1166, "A limit order in a sell OCO must be above."),
    ("SELL", "below", "profit"): (-1199, "A take profit order in a sell OCO must be above."),
    ("BUY", "below", "stop"): (-1196, "A stop loss order in a buy OCO must be above."),
    ("BUY", "above", "limit"): (-1165, "A limit order in a buy OCO must be below."),
    ("BUY", "above", "profit"): (-1198, "A take profit order in a buy OCO must be below."),
}


@dataclass(frozen=True)
class OcoRequest:
    """A validated OCO: the list's client id, both legs and newOrderRespType."""

    list_client_order_id: str | None
    below: OrderRequest
    above: OrderRequest
    resp_type: str

    @property
    def client_ids(self) -> list[str]:
        return [c for c in (self.list_client_order_id, self.below.client_order_id, self.above.client_order_id) if c]


def _kind(order_type: str) -> str:
    if order_type in STOP_LOSS_KINDS:
        return "stop"
    return "limit" if order_type == "LIMIT_MAKER" else "profit"


def parse_oco(params: Params, specs: dict[str, SymbolSpec], average: Decimal, last: Decimal) -> OcoRequest:
    """Validate an OCO against the symbol's filters and the last price."""
    symbol = params.require("symbol")
    side = params.require("side")
    qty = params.decimal("quantity")
    if qty is None:
        raise errors.mandatory("quantity")
    types = {leg: params.require(f"{leg}Type") for leg in ("above", "below")}
    spec = specs.get(symbol)
    if spec is None:
        raise errors.bad_symbol()
    if side not in SIDES:
        raise errors.bad_side()
    for order_type in types.values():
        if order_type not in ALL_TYPES:
            raise errors.bad_order_type()
        if order_type not in OCO_TYPES:
            raise errors.ApiError(-1158, "Order type not supported in OCO.")
    if all(t == "LIMIT_MAKER" for t in types.values()):
        raise errors.ApiError(-1168, "At least one OCO order must be contingent.")
    for leg, order_type in types.items():
        wrong = _WRONG_SIDE.get((side, leg, _kind(order_type)))
        if wrong:
            raise errors.ApiError(*wrong)
    legs = {leg: _leg(params, leg, symbol, side, types[leg], qty) for leg in ("below", "above")}
    for request in legs.values():
        check_filters(spec, request, average)
    _check_prices(side, legs["below"], legs["above"], last)
    resp_type = params.get("newOrderRespType") or "RESULT"
    if resp_type not in RESPONSE_TYPES:
        raise errors.invalid_value("newOrderRespType")
    return OcoRequest(params.client_id("listClientOrderId"), legs["below"], legs["above"], resp_type)


def _leg(params: Params, leg: str, symbol: str, side: str, order_type: str, qty: Decimal) -> OrderRequest:
    names = {n: f"{leg}{n[0].upper()}{n[1:]}" for n in ("price", "stopPrice", "timeInForce", "trailingDelta")}
    tif = params.get(names["timeInForce"])
    if tif is not None and tif not in TIME_IN_FORCE:
        raise errors.bad_time_in_force()
    price, stop = params.decimal(names["price"]), params.decimal(names["stopPrice"])
    check_combination(order_type, tif, qty, None, price, stop, params, names)
    if params.has(f"{leg}IcebergQty"):
        raise errors.order_rejected("Iceberg orders are not supported for this symbol.")
    if params.has(f"{leg}PegPriceType"):
        raise errors.order_rejected("Pegged orders are not supported for this symbol.")
    return OrderRequest(symbol, side, order_type, tif, qty, None, price, params.client_id(f"{leg}ClientOrderId"), stop)


def _trigger_level(request: OrderRequest) -> Decimal:
    """The price a leg acts at: the stop of a stop, the limit of a LIMIT_MAKER / TAKE_PROFIT_LIMIT."""
    if request.type in ("LIMIT_MAKER", "TAKE_PROFIT_LIMIT"):
        assert request.price is not None
        return request.price
    assert request.stop_price is not None
    return request.stop_price


def _check_prices(side: str, below: OrderRequest, above: OrderRequest, last: Decimal) -> None:
    """SELL: take-profit leg > last > stop; BUY: take-profit leg < last < stop (-2010 otherwise)."""
    if not _trigger_level(below) < last < _trigger_level(above):
        raise errors.order_rejected(errors.BAD_OCO_PRICES)
