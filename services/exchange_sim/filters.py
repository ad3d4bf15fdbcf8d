"""Order parameter checks and symbol filters (pure), in the order Binance applies them."""

from __future__ import annotations

from decimal import Decimal

from . import errors
from .decimals import is_multiple
from .matching import OrderRequest
from .params import Params
from .symbols import ORDER_TYPES, SymbolSpec

SIDES = ("BUY", "SELL")
ALL_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
_UNSUPPORTED = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    """PRICE_FILTER: range and tick size (a 0 field switches its check off)."""
    if (spec.min_price and price < spec.min_price) or (spec.max_price and price > spec.max_price) \
            or not is_multiple(price, spec.tick_size):
        raise errors.filter_failure("PRICE_FILTER")


def check_lot(spec: SymbolSpec, qty: Decimal) -> None:
    """LOT_SIZE: range and step size."""
    if qty < spec.min_qty or qty > spec.max_qty or not is_multiple(qty, spec.step_size):
        raise errors.filter_failure("LOT_SIZE")


def check_market_lot(spec: SymbolSpec, qty: Decimal) -> None:
    """MARKET_LOT_SIZE: only the maximum is set (minQty and stepSize are 0, as on Binance)."""
    if qty > spec.market_max_qty:
        raise errors.filter_failure("MARKET_LOT_SIZE")


def check_percent_price(spec: SymbolSpec, price: Decimal, average: Decimal) -> None:
    """PERCENT_PRICE_BY_SIDE with the same multipliers for both sides."""
    if price > average * spec.multiplier_up or price < average * spec.multiplier_down:
        raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")


def check_notional(spec: SymbolSpec, notional: Decimal, is_market: bool) -> None:
    """NOTIONAL: min applies to MARKET orders too (applyMinToMarket), max only to others."""
    if notional < spec.min_notional or (not is_market and notional > spec.max_notional):
        raise errors.filter_failure("NOTIONAL")


def parse_order(params: Params, specs: dict[str, SymbolSpec], average_price: Decimal | None = None) -> tuple[OrderRequest, str]:
    """Validate ``POST /api/v3/order`` parameters; returns the request and newOrderRespType."""
    symbol = params.require("symbol")
    side = params.require("side")
    order_type = params.require("type")
    spec = specs.get(symbol)
    if spec is None:
        raise errors.bad_symbol()
    if side not in SIDES:
        raise errors.bad_side()
    if order_type not in ALL_TYPES:
        raise errors.bad_order_type()
    if order_type not in ORDER_TYPES:
        raise errors.order_rejected(_UNSUPPORTED[order_type])
    tif = params.get("timeInForce")
    if tif is not None and tif not in TIME_IN_FORCE:
        raise errors.bad_time_in_force()
    qty, quote, price = params.decimal("quantity"), params.decimal("quoteOrderQty"), params.decimal("price")
    _check_combination(order_type, tif, qty, quote, price, params)
    if params.has("icebergQty"):
        raise errors.order_rejected("Iceberg orders are not supported for this symbol.")
    resp_type = params.get("newOrderRespType") or ("ACK" if order_type == "LIMIT_MAKER" else "FULL")
    if resp_type not in RESPONSE_TYPES:
        raise errors.invalid_value("newOrderRespType")
    client_id = params.client_id("newClientOrderId")
    average = average_price if average_price is not None else Decimal(0)
    if price is not None:
        check_price(spec, price)
    if qty is not None:
        check_lot(spec, qty)
        if order_type == "MARKET":
            check_market_lot(spec, qty)
    if price is not None and average > 0:
        check_percent_price(spec, price, average)
    if order_type == "MARKET":
        check_notional(spec, quote if quote is not None else average * (qty or 0), True)
    else:
        assert price is not None and qty is not None
        check_notional(spec, price * qty, False)
    request = OrderRequest(symbol, side, order_type, tif if order_type != "MARKET" else None, qty,
                           quote if qty is None else None, price, client_id)
    return request, resp_type


def _check_combination(order_type: str, tif: str | None, qty: Decimal | None, quote: Decimal | None,
                       price: Decimal | None, params: Params) -> None:
    """Mandatory and not-required parameters per order type (rest-api.md, New order)."""
    if order_type == "LIMIT":
        for name, value in (("timeInForce", tif), ("quantity", qty), ("price", price)):
            if value is None:
                raise errors.mandatory(name)
    elif order_type == "LIMIT_MAKER":
        for name, value in (("quantity", qty), ("price", price)):
            if value is None:
                raise errors.mandatory(name)
        if tif is not None:
            raise errors.not_required("timeInForce")
    else:
        if tif is not None:
            raise errors.not_required("timeInForce")
        if price is not None:
            raise errors.not_required("price")
        if qty is None and quote is None:
            raise errors.either_mandatory("quantity", "quoteOrderQty")
    if quote is not None and (order_type != "MARKET" or qty is not None):
        raise errors.not_required("quoteOrderQty")
    for name in ("stopPrice", "trailingDelta"):
        if params.has(name):
            raise errors.not_required(name)
