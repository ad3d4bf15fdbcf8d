"""The ledger as reconciliation reads and writes it: a few named operations, each in its own
session, so reconciliation needs neither the sessions nor the executor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor.core.guard import RESTING_LEG
from services.executor.store.fills import record_fill
from services.executor.store.reads import (
    get_order,
    get_order_by_exchange_id,
    last_trade_id,
    orders_of_position,
    symbols_with_history,
    totals_of,
    unsettled_orders,
)
from shared.trading.ledger import fill_from_trade
from shared.trading.vocabulary import OrderPurpose


class Ledger:
    """Reconciliation's view of the ledger database."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    async def symbols_with_history(self) -> set[str]:
        """The symbols with any order or position in the ledger; the others have nothing to settle."""
        async with self.sessions() as session:
            return await symbols_with_history(session)

    async def unsettled_count(self, symbol: str) -> int:
        """How many of the symbol's orders have an outcome that is not final yet (a leg of an
        OCO resting on the exchange is working as meant, not unsettled)."""
        async with self.sessions() as session:
            orders = await unsettled_orders(session, symbol)
        return sum(1 for o in orders if not (o.purpose == OrderPurpose.PROTECT and o.status in RESTING_LEG))

    async def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id recorded for ``symbol`` (None before the first fill)."""
        async with self.sessions() as session:
            return await last_trade_id(session, symbol)

    async def record_trades(self, symbol: str, rows: Iterable[Mapping[str, Any]]) -> tuple[int, int, set[str]]:
        """Record ``myTrades`` rows of the bot's orders (once per trade id): how many were new,
        how many belong to orders the bot did not place, and which orders got new fills."""
        recorded, foreign, touched = 0, 0, set()
        async with self.sessions.begin() as session:
            for row in rows:
                order = await get_order_by_exchange_id(session, symbol, int(row["orderId"]))
                if order is None:
                    foreign += 1
                    continue
                if await record_fill(session, order, fill_from_trade(row)):
                    recorded += 1
                    touched.add(order.client_order_id)
        return recorded, foreign, touched

    async def knows_order(self, client_order_id: str) -> bool:
        """Whether the ledger has an order with this client id."""
        async with self.sessions() as session:
            return await get_order(session, client_order_id) is not None

    async def exits_sold(self, position_id: int, base_asset: str, quote_asset: str) -> tuple[list[str], Decimal]:
        """The statuses of a position's exit orders and the base they sold so far."""
        async with self.sessions() as session:
            exits = await orders_of_position(session, position_id, OrderPurpose.EXIT)
            sold = (await totals_of(session, exits, base_asset, quote_asset)).quantity
        return [o.status for o in exits], sold
