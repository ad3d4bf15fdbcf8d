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

Nothing here sends an order, so a position is never opened or closed twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from services.executor import store
from shared.trading import ids, ledger
from services.executor.exchange import ExchangeError
from shared.trading.sizing import format_decimal

if TYPE_CHECKING:
    from services.executor.service import Executor, SymbolBook

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What reconciliation found and did for one symbol."""

    symbol: str
    unsettled_before: int = 0
    unsettled_after: int = 0
    trades_recorded: int = 0
    foreign_trades: int = 0
    unknown_open_orders: int = 0
    position: str = "FLAT"

    def summary(self) -> str:
        return (
            f"{self.unsettled_before} unsettled order(s) before, {self.unsettled_after} after; "
            f"{self.trades_recorded} trade(s) recorded, {self.foreign_trades} not the bot's; "
            f"{self.unknown_open_orders} unknown open order(s); position {self.position}"
        )


async def reconcile_symbol(executor: Executor, book: SymbolBook) -> ReconcileReport:
    """Settle ``book.symbol``'s ledger against the exchange; see the module docstring."""
    symbol = book.symbol
    report = ReconcileReport(symbol)
    info = await executor.symbol_info(book)
    async with executor.sessions() as session:
        report.unsettled_before = len(await store.unsettled_orders(session, symbol))
        last_trade = await store.last_trade_id(session, symbol)

    await executor.settle_symbol(book)

    if last_trade is not None:
        try:
            rows = await executor.exchange.trades_since(symbol, last_trade + 1)
        except ExchangeError as e:
            await executor.notifier.alert("warning", "reconcile_incomplete", f"myTrades not read: {e.message}", symbol)
            rows = []
        touched: set[str] = set()
        async with executor.sessions.begin() as session:
            for row in rows:
                order = await store.get_order_by_exchange_id(session, symbol, int(row["orderId"]))
                if order is None:
                    report.foreign_trades += 1
                    continue
                if await store.record_fill(session, order, ledger.fill_from_trade(row)):
                    report.trades_recorded += 1
                    touched.add(order.client_order_id)
        for client_id in sorted(touched):
            await executor.finalize(book, client_id)
        if report.foreign_trades:
            await executor.notifier.alert(
                "info", "foreign_trades", f"{report.foreign_trades} trade(s) on {symbol} were not placed by the bot", symbol
            )

    try:
        open_orders = await executor.exchange.open_orders(symbol)
    except ExchangeError as e:
        await executor.notifier.alert("warning", "reconcile_incomplete", f"open orders not read: {e.message}", symbol)
        open_orders = []
    async with executor.sessions() as session:
        for row in open_orders:
            client_id = str(row.get("clientOrderId", ""))
            if ids.is_bot_id(client_id) and await store.get_order(session, client_id) is None:
                report.unknown_open_orders += 1
                await executor.notifier.alert(
                    "error", "unknown_open_order", f"open order {client_id} carries a bot id but is not in the ledger", symbol
                )

    await executor.reload_position(book)
    position = book.position
    if position is not None and position.status == "OPEN":
        try:
            free = (await executor.exchange.balances()).get(info.base_asset, (Decimal(0), Decimal(0)))[0]
        except ExchangeError as e:
            free = None
            logger.warning("%s balance not read: %s", symbol, e.message)
        if free is not None:
            # After a partial exit the position holds only what its exit orders have not sold.
            async with executor.sessions() as session:
                exits = await store.orders_of_position(session, position.id, "exit")
                sold = (await store.totals_of(session, exits, info.base_asset, info.quote_asset)).quantity
            held = position.quantity + ledger.carried_dust(position.dust_in, (o.status for o in exits)) - sold
            if free < held:
                await executor.notifier.alert(
                    "error", "balance_mismatch",
                    f"open position holds {format_decimal(held)} {info.base_asset} but the account has "
                    f"{format_decimal(free)} free",
                    symbol,
                )
    async with executor.sessions() as session:
        report.unsettled_after = len(await store.unsettled_orders(session, symbol))
    report.position = position.status if position is not None else "FLAT"
    level = "warning" if report.unsettled_after or report.unknown_open_orders else "info"
    await executor.notifier.alert(level, "reconciled", report.summary(), symbol)
    return report
