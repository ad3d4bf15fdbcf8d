"""Sending a written intent under its client order id and settling its outcome, by running the
``core.sending`` state machine against the exchange (never two orders for one id).

Before every send, after any wait: an entry must still be within its signal's allowance (market
time: the market clock, then the exchange's current candle) and the symbol's lease is renewed;
otherwise nothing is sent (an order no request of which can have reached the exchange is
REJECTED at once; an entry abandoned so gets a decision-log note). The exchange's current candle
of an entry's first send can be read while its intent is written (``CandleRead``): that read is
a round trip to the exchange the entry no longer waits for.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from functools import partial

from services.executor import metrics, store
from services.executor.book import SymbolBook
from services.executor.context import NotOwned, Shell
from services.executor.core.effects import Effect, Note
from services.executor.core.entries import (
    READ_AHEAD_MAX_AGE_S,
    READS_BEFORE_SIZING,
    allowance_refusal,
    exchange_allowance_refusal,
    read_retry_delay,
)
from services.executor.core.sending import Next, Sending, SendReply, not_sent, on_query, on_reply
from services.executor.errors import ClockSkew, ExchangeError, RateLimited, Rejected, RetryLater, UnknownOutcome
from services.executor.later import Work
from services.executor.settle import Settler
from shared.events import Signal
from shared.store.models import Order
from shared.trading import ids
from shared.trading.limit_entry import limit_price
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import OrderPurpose, OrderStatus

logger = logging.getLogger(__name__)

LIMIT_MAKER = "LIMIT_MAKER"


class CandleRead:
    """The exchange's current candle of ``symbol``, read in the background from now on."""

    def __init__(self, shell: Shell, symbol: str) -> None:
        self.started = shell.clock.monotonic()
        self.task = asyncio.create_task(shell.exchange.current_candle_open(symbol, shell.settings.timeframe))
        # Its error is the caller's when it is awaited; one left unawaited is not reported.
        self.task.add_done_callback(lambda task: task.cancelled() or task.exception())

    def fresh(self, now: float) -> bool:
        return now - self.started <= READ_AHEAD_MAX_AGE_S

    def discard(self) -> None:
        self.task.cancel()


class Sender:
    """Sends orders and follows the state machine's answer until the order is settled or left."""

    def __init__(self, shell: Shell, settler: Settler) -> None:
        self.shell = shell
        self.settler = settler

    async def execute(
        self, book: SymbolBook, order: Order, signal: Signal | None = None, price: Decimal | None = None
    ) -> None:
        """Send the written intent ``order`` (an entry: of BUY ``signal``; a LIMIT_MAKER at
        ``price``) and settle its outcome; raises ``NotOwned`` when the lease was lost before a send."""
        await self._follow(book, order, self._start(order, price), signal, price, None)

    async def send_first(
        self,
        book: SymbolBook,
        order: Order,
        signal: Signal | None = None,
        price: Decimal | None = None,
        candle: CandleRead | None = None,
    ) -> Work | None:
        """Make the first send of ``order`` now and return what settles its outcome (None: it was
        not sent and has been dealt with), to be run later under the book's lock: the entries of a
        burst are all sent before any of their answers is applied (``later.Later``). ``candle``:
        the exchange's current candle, read since the intent was decided."""
        state = self._start(order, price)
        try:
            prepared = await self._prepare(book, order, state, signal, candle)
        finally:
            if candle is not None:
                candle.discard()  # a no-op once used
        if not prepared:
            return None
        state = state.sent()
        reply = await self._send(book, order, state, price)
        return partial(self._follow, book, order, state, signal, price, reply)

    def _start(self, order: Order, price: Decimal | None) -> Sending:
        maker = order.order_type == LIMIT_MAKER
        if maker and price is None:
            raise ValueError(f"LIMIT_MAKER {order.client_order_id} needs a price")
        return Sending(order.client_order_id, maker=maker)

    async def _follow(
        self,
        book: SymbolBook,
        order: Order,
        state: Sending,
        signal: Signal | None,
        price: Decimal | None,
        reply: SendReply | None,
    ) -> None:
        """Go on from ``reply`` (the answer to the send just made; None: nothing sent yet) until
        the order is settled or left."""
        shell, policy = self.shell, self.shell.send_policy
        while True:
            if reply is None:
                if not await self._prepare(book, order, state, signal):
                    return
                state = state.sent()
                reply = await self._send(book, order, state, price)
            step = on_reply(state, reply, policy)
            reply = None
            state = step.state
            await shell.perform(book, step.effects, order)
            if step.next is Next.QUERY:
                outcome = await self.settler.settle_by_query(book, order, first_delay=True)
                step = on_query(state, outcome, policy)
                await shell.perform(book, step.effects, order)
            if step.next is Next.REPRICE:
                price = await self._reprice(book, order, state)
                if price is None:
                    return
                continue
            if step.next is not Next.SEND:
                return

    async def _send(self, book: SymbolBook, order: Order, state: Sending, price: Decimal | None) -> SendReply:
        """One request for ``order``: the exchange's answer, or the error that stands for it."""
        shell = self.shell
        maker = state.maker
        logger.info(
            "%s sending %s %s %s %s%s as %s (attempt %d)",
            book.symbol,
            order.purpose,
            order.order_type,
            order.side,
            format_decimal(order.requested_quantity),
            f" at {format_decimal(price)}" if maker and price is not None else "",
            order.client_order_id,
            state.sends,
        )
        metrics.sending(order.purpose, shell.bus_entry_ms(), state.sends == 1)
        try:
            if maker and price is not None:
                return await shell.exchange.place_limit_maker_order(
                    book.symbol, order.side, order.requested_quantity, price, order.client_order_id, wait=False
                )
            return await shell.exchange.place_market_order(
                book.symbol, order.side, order.requested_quantity, order.client_order_id, wait=False
            )
        except (RateLimited, ClockSkew, Rejected, UnknownOutcome) as e:
            return e

    async def _reprice(self, book: SymbolBook, order: Order, state: Sending) -> Decimal | None:
        """The LIMIT_MAKER's price from a fresh best bid (None: the bid cannot be read, and the
        order, refused so far, is not sent)."""
        shell = self.shell
        try:
            bid = await shell.exchange.best_bid(book.symbol)
            info = await shell.symbol_info(book)
        except ExchangeError as e:
            await shell.perform(book, not_sent(state, f"best bid not read: {e.message}", shell.send_policy), order)
            return None
        offset = shell.control.risk(book.symbol).ENTRY_LIMIT_OFFSET_PERCENTAGE
        price = limit_price(bid, offset, info.filters.tick_size)
        # The ledger keeps the price the order is sent at next (and the bid it came from).
        async with shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None:
                await store.update_order(session, fresh, now_ms=shell.clock.now_ms(), limit_price=price, best_bid=bid)
        order.limit_price, order.best_bid = price, bid
        return price

    async def _prepare(
        self, book: SymbolBook, order: Order, state: Sending, signal: Signal | None, candle: CandleRead | None = None
    ) -> bool:
        """Wait for the exchange's Retry-After, then check that the order may still be sent
        (False: it is not, and has been dealt with)."""
        shell = self.shell
        wait = shell.exchange.blocked_for_s
        if 0 < wait <= shell.settings.max_retry_after_wait_s:
            await shell.clock.sleep(wait)
            candle = None
        if candle is not None and not candle.fresh(shell.clock.monotonic()):
            candle = None
        position = book.position
        if (
            order.purpose == OrderPurpose.ENTRY
            and position is not None
            and position.entry_candle_open_ms is not None
            and not ids.is_fallback_id(order.client_order_id)  # decided at its limit entry's timeout
        ):
            refusal = await self._allowance_refusal(book.symbol, position.entry_candle_open_ms, candle)
            if refusal:
                effects: tuple[Effect, ...] = not_sent(
                    state, f"not sent within its allowance: {refusal}", shell.send_policy
                )
                if signal is not None and not state.maybe_sent:
                    effects += (Note(signal, f"skipped: {refusal} (entry abandoned before sending)"),)
                await shell.perform(book, effects, order)
                return False
        if not await shell.lease.confirm(book.symbol):
            logger.warning(
                "%s lease lost before sending %s; the next owner settles it", book.symbol, order.client_order_id
            )
            message = "not sent: this replica no longer holds the symbol's lease"
            await shell.perform(book, not_sent(state, message, shell.send_policy), order)
            raise NotOwned(book.symbol)
        if state.sends or state.refusals:
            await self._touch(order)
        return True

    async def _allowance_refusal(self, symbol: str, candle_open_ms: int, candle: CandleRead | None = None) -> str:
        """Why the entry of the candle opening at ``candle_open_ms`` may no longer be sent ("" if
        it may). The market clock first: it lags the exchange, so a signal too old by it is too
        old. Then the exchange's own current candle (one klines read, weight 2), because the
        feed can lag the exchange by many candles (a loaded machine, a replay, an outage); a
        failed read is retried like the reads before sizing, and one that keeps failing
        abandons the entry (its age cannot be known). ``candle``: that read, made in advance (its
        first attempt)."""
        shell = self.shell
        refusal = allowance_refusal(await shell.market_clock(symbol), candle_open_ms, shell.allowance)
        if refusal:
            return refusal
        settings = shell.settings
        for attempt in range(1, READS_BEFORE_SIZING + 1):
            try:
                if candle is not None and attempt == 1:
                    current = await candle.task
                else:
                    current = await shell.exchange.current_candle_open(symbol, settings.timeframe)
            except (RateLimited, RetryLater, ClockSkew) as e:
                delay = read_retry_delay(e, attempt, settings.max_retry_after_wait_s, settings.order_query_delay_s)
                if delay is None:
                    return f"the exchange's time is unknown ({e.message})"
                await shell.clock.sleep(delay)
                continue
            except ExchangeError as e:
                return f"the exchange's time is unknown ({e.message})"
            return exchange_allowance_refusal(current, candle_open_ms, shell.allowance)
        raise AssertionError("unreachable")

    async def _touch(self, order: Order) -> None:
        """Stamp the order before sending it again: the grace of an intent counts from its last send."""
        async with self.shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None and fresh.status in (OrderStatus.INTENT, OrderStatus.UNKNOWN):
                await store.update_order(session, fresh, now_ms=self.shell.clock.now_ms())

    async def mark_unknown(self, book: SymbolBook, order: Order, reason: str) -> None:
        """The order's outcome is unknown: INTENT becomes UNKNOWN (it is queried next)."""
        async with self.shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None and fresh.status == OrderStatus.INTENT:
                await store.update_order(
                    session, fresh, now_ms=self.shell.clock.now_ms(), status=OrderStatus.UNKNOWN, reason=reason
                )
                order = fresh
        await self.shell.order_update(order)
