"""Pure bookkeeping: fills from every source in one shape, order totals, position figures.

A fill can reach the executor three ways: the ``fills`` of a FULL order response, an execution
report from the user-data stream, or a ``myTrades`` row. Each becomes a ``FillData`` keyed by
the exchange's trade id, so recording it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.trading.vocabulary import OrderStatus

ZERO = Decimal(0)
S = OrderStatus
FINAL_STATUSES = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED, S.EXPIRED_IN_MATCH})
EXCHANGE_STATUSES = FINAL_STATUSES | {S.NEW, S.PENDING_NEW, S.PARTIALLY_FILLED}
# Ours: the order may exist or be working on the exchange, or its fills are still arriving.
UNSETTLED_STATUSES = frozenset({S.INTENT, S.SUBMITTED, S.UNKNOWN, S.PARTIALLY_FILLED})


@dataclass(frozen=True)
class FillData:
    """One trade of one order (quantities in base, amounts in quote, commission in its asset)."""

    trade_id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int


@dataclass(frozen=True)
class OrderState:
    """An order as the exchange reports it (REST response, query, or execution report)."""

    client_order_id: str
    status: str
    exchange_order_id: int | None
    executed_quantity: Decimal
    cumulative_quote: Decimal
    time_ms: int | None = None
    fills: tuple[FillData, ...] = ()


@dataclass(frozen=True)
class FillTotals:
    """Sums over the fills of one or more orders."""

    quantity: Decimal = ZERO
    quote: Decimal = ZERO
    commission_base: Decimal = ZERO
    commission_quote: Decimal = ZERO
    last_time_ms: int | None = None

    @property
    def average_price(self) -> Decimal | None:
        """Quote per base over all fills; None before the first fill."""
        return self.quote / self.quantity if self.quantity > ZERO else None

    @property
    def credited_base(self) -> Decimal:
        """Base the buy fills put on the account: bought minus commission taken in base."""
        return self.quantity - self.commission_base

    @property
    def received_quote(self) -> Decimal:
        """Quote the sell fills put on the account: proceeds minus commission taken in quote."""
        return self.quote - self.commission_quote

    @property
    def spent_quote(self) -> Decimal:
        """Quote the buy fills cost, including any commission charged in quote."""
        return self.quote + self.commission_quote


def totals(fills: Iterable[Any], base_asset: str, quote_asset: str) -> FillTotals:
    """Add up fills (``FillData`` or store rows with the same attribute names)."""
    quantity = quote = commission_base = commission_quote = ZERO
    last: int | None = None
    for fill in fills:
        quantity += fill.quantity
        quote += fill.quote_quantity
        if fill.commission_asset == base_asset:
            commission_base += fill.commission
        elif fill.commission_asset == quote_asset:
            commission_quote += fill.commission
        last = fill.time_ms if last is None else max(last, fill.time_ms)
    return FillTotals(quantity, quote, commission_base, commission_quote, last)


def candle_open_ms(ts_ms: int, interval_ms: int) -> int:
    """Open time of the candle of length ``interval_ms`` containing the instant ``ts_ms``."""
    return ts_ms // interval_ms * interval_ms


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def fill_from_response(row: Mapping[str, Any], time_ms: int) -> FillData:
    """A ``fills`` entry of a FULL order response (it carries no time or quote amount)."""
    price, quantity = _dec(row["price"]), _dec(row["qty"])
    return FillData(
        trade_id=int(row["tradeId"]),
        price=price,
        quantity=quantity,
        quote_quantity=price * quantity,
        commission=_dec(row.get("commission", "0")),
        commission_asset=str(row.get("commissionAsset") or ""),
        time_ms=time_ms,
    )


def fill_from_trade(row: Mapping[str, Any]) -> FillData:
    """A ``GET /api/v3/myTrades`` row."""
    price, quantity = _dec(row["price"]), _dec(row["qty"])
    quote = _dec(row["quoteQty"]) if row.get("quoteQty") is not None else price * quantity
    return FillData(
        trade_id=int(row["id"]),
        price=price,
        quantity=quantity,
        quote_quantity=quote,
        commission=_dec(row.get("commission", "0")),
        commission_asset=str(row.get("commissionAsset") or ""),
        time_ms=int(row["time"]),
    )


def order_from_response(body: Mapping[str, Any]) -> OrderState:
    """An order placement response (RESULT/FULL) or a ``GET /api/v3/order`` answer."""
    time_ms = body.get("transactTime") or body.get("updateTime") or body.get("time")
    time_ms = int(time_ms) if time_ms is not None else None
    fills = tuple(fill_from_response(row, time_ms or 0) for row in body.get("fills") or ())
    return OrderState(
        client_order_id=str(body.get("clientOrderId", "")),
        status=str(body.get("status") or S.SUBMITTED),
        exchange_order_id=int(body["orderId"]) if body.get("orderId") is not None else None,
        executed_quantity=_dec(body.get("executedQty", "0")),
        cumulative_quote=_dec(body.get("cummulativeQuoteQty", "0")),
        time_ms=time_ms,
        fills=fills,
    )


def order_from_report(report: Any) -> OrderState:
    """An ``ExecutionReport`` payload: the order so far, with this event's fill if it traded."""
    fills: tuple[FillData, ...] = ()
    if report.execution_type == "TRADE" and report.trade_id >= 0 and report.last_quantity > ZERO:
        fills = (
            FillData(
                trade_id=int(report.trade_id),
                price=report.last_price,
                quantity=report.last_quantity,
                quote_quantity=report.last_price * report.last_quantity,
                commission=report.commission,
                commission_asset=report.commission_asset or "",
                time_ms=report.transact_time_ms,
            ),
        )
    client_id = report.client_order_id
    if report.execution_type == "CANCELED" and report.original_client_order_id:
        client_id = report.original_client_order_id
    return OrderState(
        client_order_id=client_id,
        status=report.status,
        exchange_order_id=report.order_id,
        executed_quantity=report.cumulative_quantity,
        cumulative_quote=report.cumulative_quote,
        time_ms=report.transact_time_ms,
        fills=fills,
    )


def stored_status(exchange_status: str, current: str) -> str:
    """The ledger's status after the exchange reported ``exchange_status`` for an order now ``current``.

    A working order is SUBMITTED; a final status is never replaced by a non-final one (reports
    can arrive after the REST answer); a status that is not an order status (a trade replayed
    during reconciliation) leaves ``current`` as it is.
    """
    if exchange_status not in EXCHANGE_STATUSES:
        return current
    status = S.SUBMITTED if exchange_status in (S.NEW, S.PENDING_NEW) else exchange_status
    if current in FINAL_STATUSES and status not in FINAL_STATUSES:
        return current
    return status


def carried_dust(dust_in: Decimal, exit_statuses: Iterable[str]) -> Decimal:
    """The bot's dust an exit of the position sells with it: the dust carried in, unless an
    exit was already refused (then the rest is sold without it, so a base balance smaller than
    the ledger says, e.g. sold by hand, cannot keep the position from being closed)."""
    return ZERO if any(status == S.REJECTED for status in exit_statuses) else dust_in
