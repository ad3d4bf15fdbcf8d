"""A moved stop followed by the protection resting on the exchange (``PROTECTION=exchange``).

The stop moves in the ledger on closed candles (``stops.StopMover``), at most once per candle;
on the tick that moved it (or the first tick after a restart) the resting stop is compared with
it, and a lower one is replaced by the next generation (``ids.protection_ids``), atomically:

``POST /api/v3/order/cancelReplace`` (``STOP_ON_FAILURE``) cancels the resting stop, the OCO's
stop leg (a leg cancels its whole list) or the single stop of an earlier replacement, and places
the new stop ``PS<g>-...`` as a single order, in one step of the matching engine: the exchange
holds a stop at every moment. It places a single order, never a list (Binance has no way to put
an OCO back atomically, and placing a second OCO first is refused: the first one locks the
quantity), so from the first replacement on the take-profit is watched by the bot on ticks
(``core.ticks``, ``stop_on_exchange``), sold at market after the stop is cancelled.

1. the old legs are noted as being replaced and the new stop written as an INTENT, in one
   transaction, before anything is sent: a restart at any later point knows the next
   generation is due (and its id), not a hand-cancelled list;
2. the cancel-replace is sent; its answer is recorded, or, when it failed or its outcome is
   unknown, each order's own state decides (old legs and new stop queried by client id): a leg
   that filled meanwhile closes the position (the new stop was then not placed: a failed cancel
   places nothing), a cancel that did not take leaves the old stop resting (tried again on a
   later tick), a new stop refused after the cancel (-2021: the price already through it) leaves
   nothing resting, and the ``protection_fallback`` error alert says the bot watches the levels
   on these very ticks, as with ``PROTECTION=bot``.

A process killed between 1 and 2 finds the old protection resting and the new stop's intent
unsent (REJECTED after ``INTENT_GRACE_S``, then sent again under its id); killed after 2, it
finds the new stop resting by its id (the settling of unsettled orders) and the old legs
cancelled: one stop rests at every moment, nothing is sold twice.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import NotOwned, Shell
from services.executor.core import effects as fx
from services.executor.core.guard import LIVE_STATUSES, REPLACED_NOTE, OcoOrder, plan_oco
from services.executor.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    RateLimited,
    RetryLater,
    UnknownOutcome,
)
from services.executor.guard import CANCEL_QUERY_ATTEMPTS, Guard
from shared.store.models import Order, Position
from shared.trading import ids
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


class StopFollower:
    """Replaces the resting OCO when the ledger's stop rose above its stop leg."""

    def __init__(self, shell: Shell, guard: Guard) -> None:
        self.shell = shell
        self.guard = guard

    async def follow(self, book: SymbolBook) -> bool:
        """Move the OCO to the position's stop if it rests lower (no request when it does not);
        True while the exchange still holds the stop (else the bot watches this very tick)."""
        await self._follow(book)
        return book.guarded

    async def _follow(self, book: SymbolBook) -> None:
        position = book.position
        if (
            not self.guard.enabled
            or not book.stop_resting
            or book.stop_leg is None
            or position is None
            or position.status != PositionStatus.OPEN
            or position.exit_reason
            or position.stop_loss is None
            or self.shell.clock.monotonic() < book.follow_after
        ):
            return
        resting = await self._resting_stop(book, book.stop_leg)
        if resting is None or resting >= position.stop_loss:
            return
        try:
            await self._replace(book, position, resting)
        except ExchangeError as e:
            await self.shell.exchange_trouble(book, e)
            book.follow_after = self.shell.clock.monotonic() + self.shell.settings.order_query_delay_s

    async def _resting_stop(self, book: SymbolBook, stop_leg: str) -> Decimal | None:
        """The stop price of the resting stop leg: as placed, else as the exchange says (once)."""
        if book.resting_stop is not None and book.resting_stop[0] == stop_leg:
            return book.resting_stop[1]
        try:
            body = await self.shell.exchange.query_order(book.symbol, stop_leg)
        except ExchangeError as e:
            logger.warning("%s stop leg %s not read: %s", book.symbol, stop_leg, e.message)
            book.follow_after = self.shell.clock.monotonic() + self.shell.settings.order_query_delay_s
            return None
        price = Decimal(str(body.get("stopPrice") or "0"))
        if price <= ZERO:
            return None
        book.resting_stop = (stop_leg, price)
        return price

    async def _replace(self, book: SymbolBook, position: Position, resting: Decimal) -> None:
        shell, stop, old_id = self.shell, position.stop_loss, book.stop_leg
        if stop is None or old_id is None:
            return
        old_generation = ids.protection_generation(old_id) or 1
        async with shell.sessions() as session:
            mine = await store.orders_of_position(session, position.id, OrderPurpose.PROTECT)
        old = [leg for leg in mine if (ids.protection_generation(leg.client_order_id) or 0) == old_generation]
        made = ids.protection_ids(position.entry_client_order_id, old_generation + 1)
        try:
            info = await shell.symbol_info(book)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
            book.follow_after = shell.clock.monotonic() + shell.settings.order_query_delay_s
            return
        held = position.quantity + position.dust_in
        planned = plan_oco(position, held, info.filters, info.order_types, made, shell.settings.stop_limit_offset)
        if isinstance(planned, str):  # the old stop keeps resting, lower
            await shell.alert(
                book, fx.Alert("warning", "protection_fallback", f"stop not moved on the exchange: {planned}")
            )
            book.follow_after = shell.clock.monotonic() + shell.settings.order_query_delay_s
            return
        new = await self._write(
            book, position, old, planned, f"{REPLACED_NOTE}: {format_decimal(resting)} -> {format_decimal(stop)}"
        )
        if new is None:
            book.follow_after = shell.clock.monotonic() + shell.settings.order_query_delay_s
            return
        if not await shell.lease.confirm(book.symbol):
            await self._settle(new, OrderStatus.REJECTED, "not sent: this replica no longer holds the lease")
            raise NotOwned(book.symbol)
        logger.info(
            "%s stop %s -> %s: cancel-replace %s by %s", book.symbol, resting, stop, old_id, new.client_order_id
        )
        try:
            body = await shell.exchange.cancel_replace_stop(book.symbol, old_id, planned)
        except ExchangeError as e:
            await self._failed(book, position, old, new, e)
            return
        await self.guard.apply_list(book, body.get("cancelResponse") or {})
        await self.guard.apply_list(book, body.get("newOrderResponse") or {})
        book.resting_stop = (new.client_order_id, planned.stop_price)
        await shell.flows.reload_position(book)

    async def _write(
        self, book: SymbolBook, position: Position, old: list[Order], planned: OcoOrder, note: str
    ) -> Order | None:
        """Note the old legs as replaced and write the new stop's intent, in one transaction (None:
        the new stop exists already, its outcome being settled, or the position moved on)."""
        shell = self.shell
        try:
            async with shell.sessions.begin() as session:
                fresh = await store.get_position(session, position.id)
                if fresh is None or fresh.status != PositionStatus.OPEN or fresh.exit_reason:
                    return None
                for leg in old:
                    row = await store.get_order(session, leg.client_order_id)
                    if row is not None:
                        row.reason = note
                [new] = await store.create_leg_intents(
                    session, fresh, planned, now_ms=shell.clock.now_ms(), market_time_ms=book.market.market_time_ms
                )
        except store.DuplicateOrderError:
            return None
        await shell.order_update(new)
        return new

    async def _failed(
        self, book: SymbolBook, position: Position, old: list[Order], new: Order, e: ExchangeError
    ) -> None:
        """The cancel-replace failed or its outcome is unknown: each order's own state decides."""
        shell = self.shell
        if isinstance(e, UnknownOutcome):
            await self._settle(new, OrderStatus.UNKNOWN, e.message[:200])
            await shell.alert(book, fx.Alert("warning", "order_unknown", f"cancel-replace {new.client_order_id}: {e}"))
            await self.guard.query_legs(book, [new], attempts=shell.send_policy.query_attempts)
            book.settle_later(shell.clock.monotonic() + shell.settings.order_query_delay_s)
        else:  # refused (STOP_ON_FAILURE: a failed cancel places nothing) or refused before it ran
            await self._settle(new, OrderStatus.REJECTED, e.message[:200])
            if isinstance(e, CredentialsRejected | RateLimited | ClockSkew | RetryLater):
                await shell.exchange_trouble(book, e)
        book.follow_after = shell.clock.monotonic() + shell.settings.order_query_delay_s
        resting = [leg for leg in old if leg.status in LIVE_STATUSES]
        await self.guard.query_legs(book, resting, attempts=CANCEL_QUERY_ATTEMPTS)
        await shell.flows.reload_position(book)
        after = book.position
        if after is None or after.id != position.id or after.status != PositionStatus.OPEN or after.exit_reason:
            return  # a leg sold: the position closes by it
        if not book.legs:  # the old protection is cancelled and the new stop not placed
            await self.guard.fallback(
                book, after, f"the stop was not moved to {format_decimal(new_stop(after))}: {e.message}"
            )

    async def _settle(self, order: Order, status: OrderStatus, reason: str) -> None:
        shell = self.shell
        async with shell.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is None or fresh.status not in (OrderStatus.INTENT, OrderStatus.UNKNOWN):
                return
            await store.update_order(session, fresh, now_ms=shell.clock.now_ms(), status=status, reason=reason)
        await shell.order_update(fresh)


def new_stop(position: Position) -> Decimal:
    return position.stop_loss if position.stop_loss is not None else ZERO
