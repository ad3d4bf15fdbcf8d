"""Recording what the exchange says about the bot's orders: fills by trade id from whichever
source brings them first (FULL response, execution report, query, myTrades), the order's status,
then its position (``Positions.finalize``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.records import merge_answer
from services.executor.errors import ExchangeError
from services.executor.positions import Positions
from shared.store.models import Order
from shared.trading import ledger

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


class Fills:
    """Records answers and fills, then lets the position move on."""

    def __init__(self, shell: Shell, positions: Positions) -> None:
        self.shell = shell
        self.positions = positions

    async def apply_order_state(self, book: SymbolBook, state: ledger.OrderState, known_id: str | None = None) -> None:
        """Record what the exchange says about one of our orders, then settle its position."""
        client_id = known_id or state.client_order_id
        async with self.shell.sessions.begin() as session:
            order = await store.get_order(session, client_id)
            if order is None:
                return
            changed, recorded = await self._record(session, book, order, state)
        if changed:
            await self.shell.order_update(order)
        await self.complete_fills(book, order, recorded)
        await self.positions.finalize(book, order.client_order_id)

    async def apply_answer(self, book: SymbolBook, order: Order, body: Mapping[str, Any]) -> None:
        """Apply an order response or query answer about ``order``."""
        await self.apply_order_state(book, ledger.order_from_response(body), known_id=order.client_order_id)

    async def _record(
        self, session: AsyncSession, book: SymbolBook, order: Order, state: ledger.OrderState
    ) -> tuple[bool, Decimal]:
        """Record ``state``'s fills and the order's status; whether the order changed, and the
        quantity of all its fills recorded now."""
        before = (order.status, order.executed_quantity, order.exchange_order_id)
        await store.record_fills(session, order, state.fills)
        info = await self.shell.symbol_info(book) if book.info is None else book.info
        fills = ledger.totals(await store.fills_of(session, [order.client_order_id]), info.base_asset, info.quote_asset)
        change = merge_answer(order, state, fills)
        await store.update_order(
            session,
            order,
            now_ms=self.shell.clock.now_ms(),
            status=change.status,
            exchange_order_id=change.exchange_order_id,
            executed_quantity=change.executed_quantity,
            cumulative_quote=change.cumulative_quote,
            commission_base=change.commission_base,
            commission_quote=change.commission_quote,
        )
        return before != (order.status, order.executed_quantity, order.exchange_order_id), fills.quantity

    async def complete_fills(self, book: SymbolBook, order: Order, recorded: Decimal | None = None) -> None:
        """A final order whose fills are not all recorded: fetch them with myTrades.
        ``recorded``: the quantity of its recorded fills, when the caller has just summed them."""
        if order.status not in ledger.FINAL_STATUSES or order.exchange_order_id is None:
            return
        if recorded is None:
            async with self.shell.sessions() as session:
                recorded = sum((f.quantity for f in await store.fills_of(session, [order.client_order_id])), ZERO)
        if recorded >= order.executed_quantity:
            return
        try:
            rows = await self.shell.exchange.order_trades(book.symbol, order.exchange_order_id)
        except ExchangeError as e:
            logger.warning("%s trades of %s not fetched: %s", book.symbol, order.client_order_id, e.message)
            return
        async with self.shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            assert fresh is not None
            trades = [ledger.fill_from_trade(r) for r in rows if int(r.get("orderId", -1)) == order.exchange_order_id]
            await store.record_fills(session, fresh, trades)
            await self._record(
                session,
                book,
                fresh,
                ledger.OrderState(fresh.client_order_id, fresh.status, fresh.exchange_order_id, ZERO, ZERO),
            )
