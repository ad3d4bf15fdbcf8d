"""Order parameter checks and symbol filters (pure), in the order Binance applies them."""

from __future__ import annotations

from decimal import Decimal

from . import errors
from .decimals import is_multiple
from .matching import OrderRequest
from .orders import MARKET_STOPS, STOP_TYPES
from .params import Params
from .symbols import SymbolSpec

SIDES = ("BUY", "SELL")
ALL_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
LIMIT_KINDS = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")  # need timeInForce and price
UNSUPPORTED_TRAILING = "Trailing stop orders are not supported for this symbol."


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    """PRICE_FILTER: range and tick size (a 0 field switches its check off)."""
    if (
        (spec.min_price and price < spec.min_price)
        or (spec.max_price and price > spec.max_price)
        or not is_multiple(price, spec.tick_size)
    ):
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
    """PERCENT_PRICE_BY_SIDE with the same multipliers for both sides (bid and ask)."""
    if price > average * spec.multiplier_up or price < average * spec.multiplier_down:
        raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")


def check_notional(spec: SymbolSpec, notional: Decimal, is_market: bool) -> None:
    """NOTIONAL: min applies to MARKET orders too (applyMinToMarket), max only to others."""
    if notional < spec.min_notional or (not is_market and notional > spec.max_notional):
        raise errors.filter_failure("NOTIONAL")


def parse_order(
    params: Params, specs: dict[str, SymbolSpec], average_price: Decimal | None = None
) -> tuple[OrderRequest, str]:
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
    tif = params.get("timeInForce")
    if tif is not None and tif not in TIME_IN_FORCE:
        raise errors.bad_time_in_force()
    qty, quote, price = params.decimal("quantity"), params.decimal("quoteOrderQty"), params.decimal("price")
    stop = params.decimal("stopPrice")
    check_combination(order_type, tif, qty, quote, price, stop, params)
    if params.has("icebergQty"):
        raise errors.order_rejected("Iceberg orders are not supported for this symbol.")
    resp_type = _resp_type(params, order_type)
    client_id = params.client_id("newClientOrderId")
    request = OrderRequest(
        symbol,
        side,
        order_type,
        tif if order_type != "MARKET" else None,
        qty,
        quote if qty is None else None,
        price,
        client_id,
        stop,
    )
    check_filters(spec, request, average_price if average_price is not None else Decimal(0))
    return request, resp_type


def _resp_type(params: Params, order_type: str) -> str:
    """``newOrderRespType``: MARKET and LIMIT default to FULL, every other type to ACK."""
    resp_type = params.get("newOrderRespType") or ("FULL" if order_type in ("MARKET", "LIMIT") else "ACK")
    if resp_type not in RESPONSE_TYPES:
        raise errors.invalid_value("newOrderRespType")
    return resp_type


def check_filters(spec: SymbolSpec, req: OrderRequest, average: Decimal) -> None:
    """The symbol filters, in Binance's order, for one order (or one leg of an order list)."""
    for value in (req.price, req.stop_price):
        if value is not None:
            check_price(spec, value)
    if req.quantity is not None:
        check_lot(spec, req.quantity)
        if req.type in ("MARKET", *MARKET_STOPS):
            check_market_lot(spec, req.quantity)
    if req.price is not None and average > 0:
        check_percent_price(spec, req.price, average)
    if req.type == "MARKET":
        check_notional(spec, req.quote_qty if req.quote_qty is not None else average * (req.quantity or 0), True)
    elif req.type in MARKET_STOPS:  # priced at the stop it triggers at
        assert req.stop_price is not None and req.quantity is not None
        check_notional(spec, req.stop_price * req.quantity, True)
    else:
        assert req.price is not None and req.quantity is not None
        check_notional(spec, req.price * req.quantity, False)


def check_combination(
    order_type: str,
    tif: str | None,
    qty: Decimal | None,
    quote: Decimal | None,
    price: Decimal | None,
    stop: Decimal | None,
    params: Params,
    names: dict[str, str] | None = None,
) -> None:
    """Mandatory and not-required parameters per order type (rest-api.md, New order); ``names``
    renames them for an order-list leg (``price`` -> ``abovePrice``)."""
    name = (names or {}).get
    is_stop = order_type in STOP_TYPES
    if order_type == "MARKET" and qty is None and quote is None:
        if tif is not None:
            raise errors.not_required("timeInForce")
        if price is not None:
            raise errors.not_required("price")
        raise errors.either_mandatory("quantity", "quoteOrderQty")
    needed: list[tuple[str, object]] = [("quantity", qty)] if order_type != "MARKET" else []
    if order_type in LIMIT_KINDS:
        needed = [("timeInForce", tif), *needed, ("price", price)]
    elif order_type == "LIMIT_MAKER":
        needed.append(("price", price))
    for field, value in needed:
        if value is None:
            raise errors.mandatory(name(field, field))
    if is_stop and stop is None:
        if params.has(name("trailingDelta", "trailingDelta")):
            raise errors.order_rejected(UNSUPPORTED_TRAILING)
        raise errors.either_mandatory(name("stopPrice", "stopPrice"), name("trailingDelta", "trailingDelta"))
    if order_type not in LIMIT_KINDS and tif is not None:
        raise errors.not_required(name("timeInForce", "timeInForce"))
    if order_type not in (*LIMIT_KINDS, "LIMIT_MAKER") and price is not None:
        raise errors.not_required(name("price", "price"))
    if quote is not None and (order_type != "MARKET" or qty is not None):
        raise errors.not_required("quoteOrderQty")
    if not is_stop and stop is not None:
        raise errors.not_required(name("stopPrice", "stopPrice"))
    if params.has(name("trailingDelta", "trailingDelta")):
        if is_stop:
            raise errors.order_rejected(UNSUPPORTED_TRAILING)
        raise errors.not_required(name("trailingDelta", "trailingDelta"))
