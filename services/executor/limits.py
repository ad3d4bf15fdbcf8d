"""A LIMIT_MAKER entry resting on the exchange (``ENTRY_ORDER=limit_maker``): cancelled at its
timeout (market time), early when part filled and the price fell to that part's stop, or when
the operator closes the position; then, with ``ENTRY_LIMIT_FALLBACK``, replaced by a MARKET buy
if nothing filled.

Its fills arrive as any order's (execution reports, queries, myTrades) and the position stays
OPENING until the order is final: FILLED, or CANCELED here; what filled opens the position and
is protected like any (``Positions.finalize``). The decisions are ``shared.trading.limit_entry``;
this module reads the ledger and the exchange and acts. Every step is safe to repeat: a cancel
of an order no longer open is settled by query, and the fallback's id is derived from the entry's.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.effects import Alert
from services.executor.errors import ExchangeError, OrderNotFound, Rejected
from services.executor.fills import Fills
from services.executor.sender import LIMIT_MAKER, Sender
from services.executor.settle import Settler
from services.executor.watch import tick_before
from shared import streams
from shared.store.models import Order, Position
from shared.trading import ids
from shared.trading.ledger import FINAL_STATUSES
from shared.trading.limit_entry import CancelReason, cancel_reason, deadline_ms, falls_back
from shared.trading.sizing import format_decimal, size_entry
from shared.trading.vocabulary import OrderStatus, PositionStatus

logger = logging.getLogger(__name__)

RESTING = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
CANCEL_NOTE = "; cancelled: "
CANCEL_RETRY_S = 2.0


class LimitEntries:
    """Watches the resting limit entry of each symbol and ends it."""

    def __init__(self, shell: Shell, fills: Fills, settler: Settler, sender: Sender) -> None:
        self.shell = shell
        self.fills = fills
        self.settler = settler
        self.sender = sender

    async def resting(self, book: SymbolBook) -> tuple[Position, Order] | None:
        """The OPENING position and its LIMIT_MAKER entry while that rests (or may rest) on the exchange."""
        position = book.position
        if position is None or position.status != PositionStatus.OPENING:
            return None
        async with self.shell.sessions() as session:
            order = await store.get_order(session, position.entry_client_order_id)
        if order is None or order.order_type != LIMIT_MAKER or order.status not in RESTING:
            return None
        return position, order

    async def check(
        self, book: SymbolBook, market_ms: int | None, price: Decimal | None, *, close: bool = False
    ) -> None:
        """Cancel the resting limit entry if it is due at market time ``market_ms`` and the latest
        ``price`` (``close``: the operator closes the position, so it is cancelled now)."""
        found = await self.resting(book)
        if found is None:
            return
        position, order = found
        params = self.shell.control.risk(book.symbol)
        candle = position.entry_candle_open_ms
        deadline = deadline_ms(candle or 0, self.shell.settings.interval_ms, params.ENTRY_LIMIT_TIMEOUT_CANDLES)
        average = order.cumulative_quote / order.executed_quantity if order.executed_quantity > 0 else None
        reason = (
            CancelReason.CLOSE
            if close
            else cancel_reason(
                market_ms=market_ms,
                deadline=deadline,
                price=price,
                executed=order.executed_quantity,
                average_price=average,
                params=params,
            )
        )
        if reason is None:
            return
        ended = await self.cancel(book, order, reason)
        if ended is not None and falls_back(reason, ended.executed_quantity, params):
            await self.fallback(book, position, ended, deadline)

    async def cancel(self, book: SymbolBook, order: Order, reason: CancelReason) -> Order | None:
        """Cancel the entry and record what it became; returns it once final (None: not known yet,
        the next tick or settling round tries again)."""
        shell = self.shell
        logger.info("%s cancelling limit entry %s (%s)", book.symbol, order.client_order_id, reason.value)
        # Why, written before the cancel is sent: a restart after it finds whether a fallback is due.
        async with shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None and CANCEL_NOTE not in fresh.reason:  # the first reason stands
                await store.update_order(
                    session, fresh, now_ms=shell.clock.now_ms(), reason=f"{fresh.reason}{CANCEL_NOTE}{reason.value}"
                )
        try:
            body = await shell.exchange.cancel_order(book.symbol, order.client_order_id)
        except (OrderNotFound, Rejected):
            # -2011/-2013: no longer open (filled, or cancelled by an earlier try): ask what it became.
            await self.settler.settle_by_query(book, order)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
            book.settle_later(shell.clock.monotonic() + CANCEL_RETRY_S)
            return None
        else:
            await self.fills.apply_answer(book, order, body)
        async with shell.sessions() as session:
            fresh = await store.get_order(session, order.client_order_id)
        if fresh is None or fresh.status not in FINAL_STATUSES:
            return None
        message = (
            f"limit entry {order.client_order_id} ended {fresh.status} ({reason.value}) with "
            f"{format_decimal(fresh.executed_quantity)} of {format_decimal(fresh.requested_quantity)} filled"
        )
        await shell.alert(book, Alert("info", "entry_limit_ended", message))
        return fresh

    async def resume(self, book: SymbolBook) -> None:
        """After a restart: a limit entry cancelled at its timeout with nothing filled whose
        fallback was not written yet (the process stopped in between) gets it now, while the
        market clock is within the signal allowance of the timeout; otherwise it is told."""
        shell = self.shell
        params = shell.control.risk(book.symbol)
        if book.position is not None or not params.ENTRY_LIMIT_FALLBACK:
            return
        async with shell.sessions() as session:
            newest = await store.recent_orders(session, book.symbol, limit=1)
            order = newest[0] if newest else None
            if (
                order is None
                or order.order_type != LIMIT_MAKER
                or order.status != OrderStatus.CANCELED
                or order.executed_quantity > 0
                or not order.reason.endswith(f"{CANCEL_NOTE}{CancelReason.TIMEOUT.value}")
                or order.position_id is None
            ):
                return
            position = await store.get_position(session, order.position_id)
        if position is None or position.entry_candle_open_ms is None:
            return
        interval = shell.settings.interval_ms
        deadline = deadline_ms(position.entry_candle_open_ms, interval, params.ENTRY_LIMIT_TIMEOUT_CANDLES)
        clock = await shell.market_clock(book.symbol)
        if clock is None or clock - deadline > shell.allowance.max_age_ms:
            message = f"limit entry {order.client_order_id} timed out unfilled; its MARKET fallback is too late now"
            await shell.alert(book, Alert("warning", "entry_fallback_skipped", message))
            return
        await self.fallback(book, position, order, deadline)

    async def fallback(self, book: SymbolBook, position: Position, order: Order, deadline: int) -> None:
        """Buy at market in place of the limit entry ``order`` that timed out unfilled: a new
        intent under the id derived from the entry's (written once), sized again at the latest price."""
        shell = self.shell
        client_id = ids.fallback_client_order_id(order.client_order_id)
        quantity = await self._fallback_quantity(book, deadline)
        if isinstance(quantity, str):
            message = f"limit entry {order.client_order_id} timed out unfilled; no MARKET fallback: {quantity}"
            await shell.alert(book, Alert("warning", "entry_fallback_skipped", message))
            return
        try:
            async with shell.sessions.begin() as session:
                new_position, intent = await store.create_entry_intent(
                    session,
                    symbol=book.symbol,
                    client_order_id=client_id,
                    quantity=quantity,
                    signal_event_id=order.signal_event_id,
                    reason=f"fallback of {order.client_order_id}",
                    entry_candle_open_ms=position.entry_candle_open_ms,
                    now_ms=shell.clock.now_ms(),
                    market_time_ms=deadline,
                    parameters_version=position.parameters_version,
                    strategy=position.strategy,
                    entry_indicators=position.entry_indicators,
                )
        except store.DuplicateOrderError:
            logger.info("%s fallback %s already written", book.symbol, client_id)
            return
        book.position = new_position
        await shell.sink.snapshot(book.symbol, new_position)
        await shell.order_update(intent)
        await self.sender.execute(book, intent)

    async def _fallback_quantity(self, book: SymbolBook, deadline: int) -> Decimal | str:
        """What the MARKET fallback buys, sized as an entry at the latest price, or why it buys
        nothing (the bot state or the circuit breaker, judged at the timeout's market time)."""
        shell = self.shell
        if not shell.control.entries_allowed:
            return shell.control.entry_refusal()
        refusal = await shell.control.breaker.entry_refusal(deadline)
        if refusal:
            return refusal
        try:
            info = await shell.symbol_info(book)
            free_quote = await shell.exchange.free_balance(info.quote_asset)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
            return e.message
        price = book.market.last_price
        if price is None:  # a new owner has followed no tick yet: the stream's newest, else market data's
            tick = await tick_before(shell.redis, book.symbol, None)
            last = tick[0] if tick else await shell.redis.hget(streams.MARKET_LAST_PRICE, book.symbol)
            price = Decimal(str(last)) if last else None
        if price is None:
            return "no market price known"
        sizing = size_entry(free_quote, price, shell.control.risk(book.symbol), info.filters)
        return sizing.reason if sizing.quantity is None else sizing.quantity
