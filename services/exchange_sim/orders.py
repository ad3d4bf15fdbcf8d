"""Orders and fills, and their JSON shapes: REST responses, myTrades rows, executionReport."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from .decimals import fmt8

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")  # Binance's "algo" orders
MARKET_STOPS = ("STOP_LOSS", "TAKE_PROFIT")  # become MARKET orders when triggered; the others become LIMIT


def triggers_upward(side: str, order_type: str) -> bool:
    """True when the stop fires as the price rises to it: STOP_LOSS BUY and TAKE_PROFIT SELL."""
    return (side == "BUY") == order_type.startswith("STOP_LOSS")


def stop_reached(side: str, order_type: str, stop: Decimal, price: Decimal) -> bool:
    """Whether a trade at ``price`` fires a stop at ``stop``."""
    return price >= stop if triggers_upward(side, order_type) else price <= stop


@dataclass
class Fill:
    """One trade of the account."""

    trade_id: int
    symbol: str
    order_id: int
    is_buyer: bool
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    order_list_id: int = -1

    def fill_row(self) -> dict[str, object]:
        """An entry of the ``fills`` array of a FULL order response."""
        return {
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }

    def trade_row(self) -> dict[str, object]:
        """A ``GET /api/v3/myTrades`` row."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "quoteQty": fmt8(self.quote_qty),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }


@dataclass
class Order:
    """An order and its current state."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = Decimal(0)
    cumm_quote: Decimal = Decimal(0)
    expiry_reason: str | None = None
    stop_price: Decimal = Decimal(0)
    order_list_id: int = -1
    working_time: int = -1  # when the order started working on the book; -1 for a stop not yet triggered
    lock_asset: str = ""
    locked: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    @property
    def working(self) -> bool:
        """On the book (or executing): every order except a stop that has not triggered yet."""
        return self.working_time != -1

    @property
    def as_executed(self) -> str:
        """The type it trades as once working: a triggered stop is a MARKET or LIMIT order."""
        if not self.is_stop:
            return self.type
        return "MARKET" if self.type in MARKET_STOPS else "LIMIT"

    def result(self, transact_time: int) -> dict[str, object]:
        """The RESULT order response (ACK fields included)."""
        body: dict[str, object] = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_time,
            "price": fmt8(self.price),
            "origQty": fmt8(self.orig_qty),
            "executedQty": fmt8(self.executed_qty),
            "origQuoteOrderQty": fmt8(self.orig_quote_qty),
            "cummulativeQuoteQty": fmt8(self.cumm_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }
        if self.is_stop:
            body["stopPrice"] = fmt8(self.stop_price)
        body["workingTime"] = self.working_time
        body["selfTradePreventionMode"] = "NONE"
        if self.expiry_reason:
            body["expiryReason"] = self.expiry_reason
        return body

    def response(self, resp_type: str, transact_time: int, fills: list[Fill]) -> dict[str, object]:
        """The order placement response in the requested ``newOrderRespType``."""
        if resp_type == "ACK":
            return {
                "symbol": self.symbol,
                "orderId": self.order_id,
                "orderListId": self.order_list_id,
                "clientOrderId": self.client_order_id,
                "transactTime": transact_time,
            }
        body = self.result(transact_time)
        if resp_type == "FULL":
            body["fills"] = [f.fill_row() for f in fills]
        return body

    def query(self) -> dict[str, object]:
        """The ``GET /api/v3/order`` / openOrders / allOrders shape."""
        body: dict[str, object] = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id,
            "price": fmt8(self.price),
            "origQty": fmt8(self.orig_qty),
            "executedQty": fmt8(self.executed_qty),
            "cummulativeQuoteQty": fmt8(self.cumm_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt8(self.stop_price),
            "icebergQty": fmt8(Decimal(0)),
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": self.working,
            "workingTime": self.working_time,
            "origQuoteOrderQty": fmt8(self.orig_quote_qty),
            "selfTradePreventionMode": "NONE",
        }
        if self.expiry_reason:
            body["expiryReason"] = self.expiry_reason
        return body

    def cancel_response(self, cancel_client_id: str, transact_time: int) -> dict[str, object]:
        """The ``DELETE /api/v3/order`` response."""
        body: dict[str, object] = {
            "symbol": self.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": cancel_client_id,
            "transactTime": transact_time,
            "price": fmt8(self.price),
            "origQty": fmt8(self.orig_qty),
            "executedQty": fmt8(self.executed_qty),
            "origQuoteOrderQty": fmt8(self.orig_quote_qty),
            "cummulativeQuoteQty": fmt8(self.cumm_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }
        if self.is_stop:
            body["stopPrice"] = fmt8(self.stop_price)
        body["selfTradePreventionMode"] = "NONE"
        return body

    def to_state(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fills"}
        data["fills"] = [{f.name: getattr(fill, f.name) for f in fields(fill)} for fill in self.fills]
        return _jsonable(data)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Order:
        values = dict(data)
        if "working_time" not in values and values.get("type") not in STOP_TYPES:
            values["working_time"] = values["time"]  # saved before stop orders existed: it was working
        values["fills"] = [Fill(**_decimals(Fill, f)) for f in data.get("fills", [])]
        return cls(**_decimals(cls, {k: v for k, v in values.items() if k != "fills"}), fills=values["fills"])


def execution_report(
    order: Order,
    exec_type: str,
    now: int,
    exec_id: int,
    fill: Fill | None = None,
    reject_reason: str = "NONE",
    cancel_client_id: str | None = None,
    working: bool = False,
) -> dict[str, object]:
    """An ``executionReport`` user-data event reflecting ``order`` as it is now."""
    event: dict[str, object] = {
        "e": "executionReport",
        "E": now,
        "s": order.symbol,
        "c": cancel_client_id if cancel_client_id is not None else order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt8(order.orig_qty),
        "p": fmt8(order.price),
        "P": fmt8(order.stop_price),
        "F": fmt8(Decimal(0)),
        "g": order.order_list_id,
        "C": order.client_order_id if cancel_client_id is not None else "",
        "x": exec_type,
        "X": order.status,
        "r": reject_reason,
        "i": order.order_id,
        "l": fmt8(fill.qty if fill else Decimal(0)),
        "z": fmt8(order.executed_qty),
        "L": fmt8(fill.price if fill else Decimal(0)),
        "n": fmt8(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": fill.time if fill else now,
        "t": fill.trade_id if fill else -1,
        "I": exec_id,
        "w": working,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": order.time,
        "Z": fmt8(order.cumm_quote),
        "Y": fmt8(fill.quote_qty if fill else Decimal(0)),
        "Q": fmt8(order.orig_quote_qty),
    }
    if exec_type != "REJECTED" and order.working:
        event["W"] = order.working_time
    event["V"] = "NONE"
    if order.status == "EXPIRED" and order.expiry_reason:
        event["eR"] = order.expiry_reason
    return event


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, list):
            out[key] = [_jsonable(v) for v in value]
        else:
            out[key] = value
    return out


def _decimals(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(cls)}
    return {k: Decimal(v) if kinds.get(k) == "Decimal" and isinstance(v, str) else v for k, v in data.items()}
