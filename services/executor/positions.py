"""Moving a position on in the ledger: after its order is final (``core.finals``), after its
order is refused (``core.refusals``), and reading it back (a decided exit is taken up again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core import effects as fx
from services.executor.core.exits import resumed
from services.executor.core.finals import FinalFacts, Market, settle_final
from services.executor.core.refusals import Refusal, refuse_order
from services.executor.core.ticks import EntryTimes
from services.executor.errors import ExchangeError
from services.executor.exchange import SymbolInfo
from shared import streams
from shared.store.models import Order, Position
from shared.trading.ledger import FINAL_STATUSES, totals
from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus


class Positions:
    """Applies the core's position decisions to the ledger and performs what follows."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    async def finalize(self, book: SymbolBook, client_order_id: str) -> None:
        """Move the order's position on when the order is final and all its fills are known."""
        shell = self.shell
        info = await shell.symbol_info(book)
        async with shell.sessions.begin() as session:
            order = await store.get_order(session, client_order_id)
            if order is None or order.status not in FINAL_STATUSES or order.position_id is None:
                return
            position = await store.get_position(session, order.position_id)
            if position is None:
                return
            facts = await self._final_facts(session, book, info, order, position)
            step = settle_final(facts, self._market(info), book.exit, book.closes)
            if step.settled and step.change is not None:
                await write_change(session, position, step.change)
                book.position = await store.active_position(session, book.symbol)
        if not step.settled:
            await shell.perform(book, step.effects)
            return
        book.exit = step.exit
        await self.load_entry_times(book)
        await shell.perform(book, step.effects)
        if isinstance(step.change, fx.MarkClosed):
            await self._count_closed(info, position, step.change.closed)

    async def _count_closed(self, info: SymbolInfo, position: Position, closed: fx.Closed) -> None:
        """Tell the circuit breaker the position's realised profit (after fees), at the market time
        its exit was decided (the fill's stamp when none is known)."""
        profit = closed.quote_received - position.quote_spent
        closed_ms = position.exit_market_time_ms or closed.exit_time_ms
        await self.shell.control.breaker.position_closed(position.id, profit, closed_ms, self._equity(info))

    async def count_missed(self, book: SymbolBook) -> None:
        """Count in the circuit breaker every closed position of the ledger it has not counted
        (a process that died between the ledger's write and the count); see ``breaker``."""
        breaker = self.shell.control.breaker
        if not breaker.limits.enabled:
            return
        floor = await breaker.floor_ms()
        async with self.shell.sessions() as session:
            closed = [
                (p.id, p.quote_received - p.quote_spent, exit_ms)
                for p in await store.closed_after(session, floor)
                if p.quote_received is not None and (exit_ms := p.exit_market_time_ms or p.exit_time_ms) is not None
            ]
        await breaker.catch_up(closed, self._equity(await self.shell.symbol_info(book)))

    def _equity(self, info: SymbolInfo) -> Callable[[], Awaitable[Decimal | None]]:
        exchange = self.shell.exchange

        async def equity() -> Decimal | None:
            try:
                return await exchange.free_balance(info.quote_asset)
            except ExchangeError:
                return None

        return equity

    async def _final_facts(
        self, session: AsyncSession, book: SymbolBook, info: SymbolInfo, order: Order, position: Position
    ) -> FinalFacts:
        fills = await store.fills_of(session, [order.client_order_id])
        order_totals = totals(fills, info.base_asset, info.quote_asset)
        if order.purpose != OrderPurpose.EXIT or position.status != PositionStatus.CLOSING:
            return FinalFacts(order, position, order_totals)
        exits = await store.orders_of_position(session, position.id, OrderPurpose.EXIT)
        exit_totals = await store.totals_of(session, exits, info.base_asset, info.quote_asset)
        return FinalFacts(order, position, order_totals, exits, exit_totals, book.market.last_price)

    def _market(self, info: SymbolInfo) -> Market:
        shell = self.shell
        return Market(
            info.filters,
            info.base_asset,
            shell.control.parameters,
            shell.clock.monotonic(),
            shell.exchange.blocked_for_s,
            shell.exit_policy,
        )

    async def refuse_order(self, book: SymbolBook, order: Order, refusal: Refusal) -> None:
        """The order definitely does not exist: REJECTED, and the position goes back to where it was."""
        shell = self.shell
        async with shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is None or fresh.status in FINAL_STATUSES:
                return
            position = await store.get_position(session, fresh.position_id) if fresh.position_id else None
            step = refuse_order(
                fresh,
                position,
                refusal,
                book.exit,
                closes_waiting=bool(book.closes),
                now=shell.clock.monotonic(),
                policy=shell.exit_policy,
                blocked_for_s=shell.exchange.blocked_for_s,
            )
            await store.update_order(
                session,
                fresh,
                now_ms=shell.clock.now_ms(),
                status=OrderStatus.REJECTED,
                reason=step.order_change.reason,
            )
            if position is not None and step.position_change is not None:
                await write_change(session, position, step.position_change)
            book.position = await store.active_position(session, book.symbol)
        book.exit = step.exit
        await shell.order_update(fresh)
        await shell.perform(book, step.effects)

    async def reload_position(self, book: SymbolBook) -> None:
        """Read the symbol's active position from the ledger and publish its snapshot."""
        shell = self.shell
        async with shell.sessions() as session:
            book.position = position = await store.active_position(session, book.symbol)
            if (
                position is not None
                and position.status == PositionStatus.OPEN
                and position.exit_reason
                and book.exit.pending is None
            ):
                exits = await store.orders_of_position(session, position.id, OrderPurpose.EXIT)
                book.exit = resumed(position, exits, book.exit, shell.clock.monotonic())
        await self.load_entry_times(book)
        await shell.sink.snapshot(book.symbol, book.position)

    async def load_entry_times(self, book: SymbolBook) -> None:
        """When the open position's entry filled and when its order was sent (``EntryTimes``)."""
        position = book.position
        if position is None or position.status not in (PositionStatus.OPEN, PositionStatus.CLOSING):
            book.entry = EntryTimes()
            return
        sent = await self.shell.redis.hget(streams.ENTRY_SENT, position.entry_client_order_id)
        book.entry = EntryTimes(position.entry_time_ms, None if sent is None else int(sent))


async def write_change(session: AsyncSession, position: Position, change: fx.LedgerChange) -> None:
    """Write a position change the core decided."""
    match change:
        case fx.MarkOpen(opened=o):
            await store.mark_position_open(
                session,
                position,
                entry_price=o.entry_price,
                quantity=o.quantity,
                quote_spent=o.quote_spent,
                stop_loss=o.stop_loss,
                take_profit=o.take_profit,
                entry_time_ms=o.entry_time_ms,
            )
        case fx.MarkFailed():
            await store.mark_position_failed(session, position)
        case fx.Reopen(keep_exit=keep_exit):
            await store.reopen_position(session, position, keep_exit=keep_exit)
        case fx.MarkClosed(closed=c):
            await store.mark_position_closed(
                session,
                position,
                exit_price=c.exit_price,
                quote_received=c.quote_received,
                return_pct=c.return_pct,
                exit_time_ms=c.exit_time_ms,
                dust_out=c.dust_out,
            )
        case fx.RejectOrder():
            raise ValueError("an order's rejection is not a position change")
