"""Moving a position on in the ledger: after its order is final (``core.finals``), after its
order is refused (``core.refusals``), and reading it back (a decided exit is taken up again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.executor import metrics, store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core import effects as fx
from services.executor.core.exits import resumed
from services.executor.core.finals import FinalFacts, Market, settle_final
from services.executor.core.guard import RESTING_LEG, STOP_TYPES, leg_exit
from services.executor.core.refusals import Refusal, refuse_order
from services.executor.core.ticks import EntryTimes
from services.executor.errors import ExchangeError
from services.executor.exchange import SymbolInfo
from services.executor.klines import entry_atr
from shared import streams
from shared.codec import loads
from shared.store.models import Order, Position
from shared.trading.breaker import account_equity
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
            if order.purpose == OrderPurpose.PROTECT and not await self._leg_sold(session, position, order):
                await self._load_legs(session, book)
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
        async with shell.sessions() as session:
            await self._load_legs(session, book)
        await shell.perform(book, step.effects)
        if isinstance(step.change, fx.MarkClosed):
            await self._count_closed(info, position, step.change.closed)
        elif isinstance(step.change, fx.MarkOpen):
            await shell.flows.protect(book)

    async def _leg_sold(self, session: AsyncSession, position: Position, leg: Order) -> bool:
        """A final leg of the OCO that sold makes the position CLOSING by it (its exit reason,
        the candle of its last fill); True when the position is now closed by its legs' fills."""
        if position.status == PositionStatus.CLOSING:
            # Closing by this leg (moved on again after a restart); an exit of the bot's decides itself.
            return position.exit_client_order_id == leg.client_order_id
        if position.status != PositionStatus.OPEN:
            return False
        sold = leg_exit(await store.orders_of_position(session, position.id, OrderPurpose.PROTECT))
        if sold is None or sold.client_order_id != leg.client_order_id:
            return False
        fills = await store.fills_of(session, [leg.client_order_id])
        stamp = max((f.time_ms for f in fills), default=leg.updated_at_ms)
        await store.mark_leg_exit(
            session,
            position,
            leg=leg,
            exit_reason=sold.reason.value,
            stamp_ms=stamp,
            interval_ms=self.shell.settings.interval_ms,
        )
        return True

    async def _load_legs(self, session: AsyncSession, book: SymbolBook) -> None:
        position = book.position
        legs = await store.live_legs(session, book.symbol) if position is not None else []
        mine = [leg for leg in legs if position is not None and leg.position_id == position.id]
        book.legs = tuple(leg.status for leg in mine)
        stops = [leg for leg in mine if leg.order_type in STOP_TYPES and leg.status in RESTING_LEG]
        book.stop_resting = bool(stops)
        book.stop_leg = stops[-1].client_order_id if stops else None
        book.take_profit_resting = any(leg.order_type == "LIMIT_MAKER" for leg in mine)

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
        """The account's whole equity in ``info``'s quote asset: its balance plus the base asset
        of every traded symbol quoted in it at the last price (``breaker.account_equity``)."""
        shell = self.shell

        async def equity() -> Decimal | None:
            try:
                balances = await shell.exchange.balances()
                infos = [await shell.exchange.symbol_info(s) for s in shell.settings.symbols]
            except ExchangeError:
                return None
            infos = [i for i in infos if i.quote_asset == info.quote_asset]
            last = await shell.redis.hmget(streams.MARKET_LAST_PRICE, [i.symbol for i in infos])
            prices = {i.base_asset: Decimal(str(p)) if p else None for i, p in zip(infos, last, strict=True)}
            value = account_equity(balances, info.quote_asset, prices)
            metrics.EQUITY.set(float(value))
            return value

        return equity

    async def _final_facts(
        self, session: AsyncSession, book: SymbolBook, info: SymbolInfo, order: Order, position: Position
    ) -> FinalFacts:
        fills = await store.fills_of(session, [order.client_order_id])
        order_totals = totals(fills, info.base_asset, info.quote_asset)
        if order.purpose == OrderPurpose.ENTRY:
            indicators = loads(position.entry_indicators) if position.entry_indicators else None
            atr = entry_atr(indicators if isinstance(indicators, dict) else None)
            return FinalFacts(order, position, order_totals, entry_atr=atr)
        if position.status != PositionStatus.CLOSING:
            return FinalFacts(order, position, order_totals)
        exits: list[Order] = await store.orders_of_position(session, position.id, OrderPurpose.EXIT)
        # What the OCO's legs sold counts with the exits: a leg that sold is the exit itself, a
        # leg cancelled after a partial fill sold part of what the bot's exit then sells.
        legs = await store.orders_of_position(session, position.id, OrderPurpose.PROTECT)
        if order.purpose == OrderPurpose.PROTECT:
            exits = [*exits, order]
        named = {o.client_order_id for o in exits}
        sold_by = [*exits, *(leg for leg in legs if leg.executed_quantity > 0 and leg.client_order_id not in named)]
        exit_totals = await store.totals_of(session, sold_by, info.base_asset, info.quote_asset)
        return FinalFacts(order, position, order_totals, exits, exit_totals, book.market.last_price)

    def _market(self, info: SymbolInfo) -> Market:
        shell = self.shell
        return Market(
            info.filters,
            info.base_asset,
            shell.control.risk(info.symbol),
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
            await self._load_legs(session, book)
        await self.load_entry_times(book)
        await shell.sink.snapshot(book.symbol, book.position, book.protection)

    async def load_entry_times(self, book: SymbolBook) -> None:
        """When the open position's entry filled, on the exchange's clock (``EntryTimes``)."""
        position = book.position
        if position is None or position.status not in (PositionStatus.OPEN, PositionStatus.CLOSING):
            book.entry = EntryTimes()
            return
        book.entry = EntryTimes(position.entry_time_ms)


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
