"""Reconciliation of one symbol when a replica takes it (start or takeover).

The ledger is compared with the exchange and settled, in this order:

1. orders whose outcome is not final (INTENT, SUBMITTED, UNKNOWN, PARTIALLY_FILLED) are queried
   by client order id; what the exchange knows is applied (an order filled while the executor
   was down becomes a fill and an OPEN or CLOSED position); an id the exchange does not know,
   once older than ``INTENT_GRACE_S``, is marked REJECTED (an entry is then abandoned, an exit
   is sent again by the next trigger);
2. a position left OPENING or CLOSING behind a final order is moved on;
3. trades since the last recorded trade id (``myTrades``) are recorded for the orders they
   belong to; trades of orders the bot did not place are reported;
4. open orders carrying one of the bot's ids but unknown to the ledger are reported;
5. the base balance is compared with the open position's quantity.

A symbol of which the ledger holds no order and no position has nothing to settle, no trade to
record and no position to compare: only step 4 applies (``reconcile_clean_symbol``), from the
open orders read once for every symbol, so a start of 500 new symbols does not spend a dozen
ledger queries on each.

Nothing here sends an order, so a position is never opened or closed twice. It talks to narrow
collaborators: the settling of orders, the ledger, the exchange's reads, and an alert sink.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from services.executor.book import SymbolBook
from services.executor.errors import ExchangeError
from services.executor.exchange import SymbolInfo
from services.executor.notify import FLAT
from services.executor.ports import AlertSink
from shared.trading import ids
from shared.trading.lifecycle import held_quantity
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import PositionStatus

logger = logging.getLogger(__name__)


class Settling(Protocol):
    """Settling the symbol's orders and positions (the executor's own flows)."""

    async def symbol_info(self, book: SymbolBook) -> SymbolInfo: ...

    async def settle_symbol(self, book: SymbolBook) -> None: ...

    async def finalize(self, book: SymbolBook, client_order_id: str) -> None: ...

    async def reload_position(self, book: SymbolBook) -> None: ...


class ReconcileLedger(Protocol):
    """The ledger reads and writes reconciliation needs (``store.ledger.Ledger``)."""

    async def unsettled_count(self, symbol: str) -> int: ...

    async def last_trade_id(self, symbol: str) -> int | None: ...

    async def record_trades(self, symbol: str, rows: Iterable[Mapping[str, Any]]) -> tuple[int, int, set[str]]: ...

    async def knows_order(self, client_order_id: str) -> bool: ...

    async def exits_sold(self, position_id: int, base_asset: str, quote_asset: str) -> tuple[list[str], Decimal]: ...


class ReconcileExchange(Protocol):
    """The exchange reads reconciliation needs."""

    async def trades_since(self, symbol: str, from_id: int, limit: int = 1000) -> list[dict[str, Any]]: ...

    async def open_orders(self, symbol: str) -> list[dict[str, Any]]: ...

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...

    async def recent_balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...


@dataclass
class ReconcileReport:
    """What reconciliation found and did for one symbol."""

    symbol: str
    unsettled_before: int = 0
    unsettled_after: int = 0
    trades_recorded: int = 0
    foreign_trades: int = 0
    unknown_open_orders: int = 0
    position: str = FLAT

    def summary(self) -> str:
        return (
            f"{self.unsettled_before} unsettled order(s) before, {self.unsettled_after} after; "
            f"{self.trades_recorded} trade(s) recorded, {self.foreign_trades} not the bot's; "
            f"{self.unknown_open_orders} unknown open order(s); position {self.position}"
        )

    @property
    def level(self) -> str:
        """The alert level of the summary: a warning while something is left to look at."""
        return "warning" if self.unsettled_after or self.unknown_open_orders else "info"


def balance_shortfall(held: Decimal, free: Decimal, base_asset: str) -> str | None:
    """The alert text when the account holds less base than the open position ("" if it does not)."""
    if free >= held:
        return None
    return f"open position holds {format_decimal(held)} {base_asset} but the account has {format_decimal(free)} free"


async def reconcile_symbol(
    book: SymbolBook, *, settling: Settling, ledger: ReconcileLedger, exchange: ReconcileExchange, sink: AlertSink
) -> ReconcileReport:
    """Settle ``book.symbol``'s ledger against the exchange; see the module docstring."""
    symbol = book.symbol
    report = ReconcileReport(symbol)
    info = await settling.symbol_info(book)
    report.unsettled_before = await ledger.unsettled_count(symbol)
    last_trade = await ledger.last_trade_id(symbol)
    await settling.settle_symbol(book)
    if last_trade is not None:
        await _record_trades(book, last_trade, report, settling, ledger, exchange, sink)
    report.unknown_open_orders = await _unknown_open_orders(symbol, ledger.knows_order, exchange, sink)
    await settling.reload_position(book)
    if book.position is not None and book.position.status == PositionStatus.OPEN:
        await _compare_balance(book, info, ledger, exchange, sink)
    report.unsettled_after = await ledger.unsettled_count(symbol)
    report.position = book.position.status if book.position is not None else FLAT
    await sink.alert(report.level, "reconciled", report.summary(), symbol)
    return report


async def reconcile_clean_symbol(
    book: SymbolBook, *, settling: Settling, exchange: ReconcileExchange, sink: AlertSink
) -> ReconcileReport:
    """``reconcile_symbol`` for a symbol the ledger holds no order or position of: an open order
    carrying a bot id is unknown to the ledger; the symbol is flat."""
    symbol = book.symbol
    report = ReconcileReport(symbol)
    await settling.symbol_info(book)
    report.unknown_open_orders = await _unknown_open_orders(symbol, _unknown, exchange, sink)
    book.position = None
    await sink.alert(report.level, "reconciled", report.summary(), symbol)
    return report


async def _unknown(_: str) -> bool:
    return False


async def _unknown_open_orders(
    symbol: str, knows_order: Callable[[str], Awaitable[bool]], exchange: ReconcileExchange, sink: AlertSink
) -> int:
    """Alert each open order of ``symbol`` that carries a bot id the ledger does not know."""
    try:
        open_orders = await exchange.open_orders(symbol)
    except ExchangeError as e:
        await sink.alert("warning", "reconcile_incomplete", f"open orders not read: {e.message}", symbol)
        open_orders = []
    unknown = 0
    for row in open_orders:
        client_id = str(row.get("clientOrderId", ""))
        if ids.is_bot_id(client_id) and not await knows_order(client_id):
            unknown += 1
            await sink.alert(
                "error",
                "unknown_open_order",
                f"open order {client_id} carries a bot id but is not in the ledger",
                symbol,
            )
    return unknown


async def _record_trades(
    book: SymbolBook,
    last_trade: int,
    report: ReconcileReport,
    settling: Settling,
    ledger: ReconcileLedger,
    exchange: ReconcileExchange,
    sink: AlertSink,
) -> None:
    symbol = book.symbol
    try:
        rows = await exchange.trades_since(symbol, last_trade + 1)
    except ExchangeError as e:
        await sink.alert("warning", "reconcile_incomplete", f"myTrades not read: {e.message}", symbol)
        rows = []
    report.trades_recorded, report.foreign_trades, touched = await ledger.record_trades(symbol, rows)
    for client_id in sorted(touched):
        await settling.finalize(book, client_id)
    if report.foreign_trades:
        await sink.alert(
            "info", "foreign_trades", f"{report.foreign_trades} trade(s) on {symbol} were not placed by the bot", symbol
        )


async def _compare_balance(
    book: SymbolBook, info: SymbolInfo, ledger: ReconcileLedger, exchange: ReconcileExchange, sink: AlertSink
) -> None:
    position = book.position
    assert position is not None
    # After a partial exit the position holds only what its exit orders have not sold.
    statuses, sold = await ledger.exits_sold(position.id, info.base_asset, info.quote_asset)
    held = held_quantity(position.quantity, position.dust_in, statuses, sold)
    shortfall = None
    # The account read shared by the symbols of one round first; a shortfall is confirmed by a
    # fresh read (a fill just settled may be newer than the shared one).
    for read in (exchange.recent_balances, exchange.balances):
        try:
            free, locked = (await read()).get(info.base_asset, (Decimal(0), Decimal(0)))
        except ExchangeError as e:
            logger.warning("%s balance not read: %s", book.symbol, e.message)
            return
        if book.legs:  # the position's OCO rests on the exchange: it holds the base locked
            free += locked
        shortfall = balance_shortfall(held, free, info.base_asset)
        if shortfall is None:
            return
    if shortfall is not None:
        await sink.alert("error", "balance_mismatch", shortfall, book.symbol)
