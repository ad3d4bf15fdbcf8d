"""Sending a written intent under its client order id and settling its outcome, by running the
``core.sending`` state machine against the exchange (never two orders for one id).

Before every send, after any wait: an entry must still be within its signal's allowance (market
time) and the symbol's lease is renewed; otherwise nothing is sent (an order no request of which
can have reached the exchange is REJECTED at once).
"""

from __future__ import annotations

import logging

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import NotOwned, Shell
from services.executor.core.entries import allowance_refusal
from services.executor.core.sending import Next, Sending, Step, not_sent, on_query, on_reply
from services.executor.errors import ClockSkew, RateLimited, Rejected, UnknownOutcome
from services.executor.settle import Settler
from shared import streams
from shared.store.models import Order
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import OrderPurpose, OrderStatus

logger = logging.getLogger(__name__)

# Stamp an entry with the Redis server time at which its order leaves: the clock of entry ids.
_STAMP_SENT = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ms)
return ms
"""


class Sender:
    """Sends orders and follows the state machine's answer until the order is settled or left."""

    def __init__(self, shell: Shell, settler: Settler) -> None:
        self.shell = shell
        self.settler = settler

    async def execute(self, book: SymbolBook, order: Order) -> None:
        """Send the written intent ``order`` and settle its outcome; raises ``NotOwned`` when the
        lease was lost before a send."""
        shell, policy = self.shell, self.shell.send_policy
        state = Sending(order.client_order_id)
        while True:
            if not await self._prepare(book, order, state):
                return
            state = state.sent()
            logger.info(
                "%s sending %s MARKET %s %s as %s (attempt %d)",
                book.symbol,
                order.purpose,
                order.side,
                format_decimal(order.requested_quantity),
                order.client_order_id,
                state.sends,
            )
            step: Step
            try:
                body = await shell.exchange.place_market_order(
                    book.symbol, order.side, order.requested_quantity, order.client_order_id, wait=False
                )
            except (RateLimited, ClockSkew, Rejected, UnknownOutcome) as e:
                step = on_reply(state, e, policy)
            else:
                step = on_reply(state, body, policy)
            state = step.state
            await shell.perform(book, step.effects, order)
            if step.next is Next.QUERY:
                outcome = await self.settler.settle_by_query(book, order, first_delay=True)
                step = on_query(state, outcome, policy)
                await shell.perform(book, step.effects, order)
            if step.next is not Next.SEND:
                return

    async def _prepare(self, book: SymbolBook, order: Order, state: Sending) -> bool:
        """Wait for the exchange's Retry-After, then check that the order may still be sent
        (False: it is not, and has been dealt with)."""
        shell = self.shell
        wait = shell.exchange.blocked_for_s
        if 0 < wait <= shell.settings.max_retry_after_wait_s:
            await shell.clock.sleep(wait)
        position = book.position
        if order.purpose == OrderPurpose.ENTRY and position is not None and position.entry_candle_open_ms is not None:
            clock = await shell.market_clock(book.symbol)
            refusal = allowance_refusal(clock, position.entry_candle_open_ms, shell.allowance)
            if refusal:
                await shell.perform(
                    book, not_sent(state, f"not sent within its allowance: {refusal}", shell.send_policy), order
                )
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
        if order.purpose == OrderPurpose.ENTRY and not state.maybe_sent:
            # What the bus carried before the order left is from before the position.
            await shell.redis.eval(_STAMP_SENT, 1, streams.ENTRY_SENT, order.client_order_id)
        return True

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
