"""Exchange-side protection (``PROTECTION=exchange``): the OCO SELL placed right after an entry
opens a position, its legs followed until one sells, and its cancel before the bot sells itself.

Every leg is an order of the ledger (purpose ``protect``) written as an INTENT before the list is
sent, under ids derived from the entry id and the OCO's generation (``ids.protection_ids``; a moved
stop replaces the OCO by the next one, ``follow``), so the intent -> send ->
settle path of single orders covers lists: an unknown outcome is settled by querying each leg by
its client id, a leg the exchange never saw is REJECTED after ``INTENT_GRACE_S`` and the list is
then sent again under the same ids (the exchange refuses a second open list with one id). When
the exchange refuses the list (filters, -2010, MAX_NUM_ALGO_ORDERS, no such order type), the
position is watched on ticks by the bot and an error alert ``protection_fallback`` says so:
a position is never unprotected without an alert. ``core.guard`` decides what to place and what
a leg's fill means.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import NotOwned, Shell
from services.executor.core import effects as fx
from services.executor.core.guard import (
    RESTING_LEG,
    OcoOrder,
    next_generation,
    plan_oco,
    refused_alert,
    single_stop,
)
from services.executor.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    Rejected,
    RetryLater,
    UnknownOutcome,
)
from services.executor.fills import Fills
from services.executor.settle import Settler
from shared.store.models import Order, Position
from shared.trading import ids, ledger
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus, ProtectionMode

logger = logging.getLogger(__name__)

CANCEL_QUERY_ATTEMPTS = 2


class Guard:
    """Places, follows and cancels the OCO protecting each open position."""

    def __init__(self, shell: Shell, fills: Fills, settler: Settler) -> None:
        self.shell = shell
        self.fills = fills
        self.settler = settler

    @property
    def enabled(self) -> bool:
        return self.shell.settings.protection == ProtectionMode.EXCHANGE

    async def protect(self, book: SymbolBook) -> None:
        """Write the legs of the open position's OCO (its next generation), then place it
        (nothing when the bot protects)."""
        shell, position = self.shell, book.position
        if not self.enabled or position is None or position.status != PositionStatus.OPEN or position.exit_reason:
            return
        async with shell.sessions() as session:
            earlier = await store.orders_of_position(session, position.id, OrderPurpose.PROTECT)
        generation = next_generation(earlier, [leg.reason or "" for leg in earlier])
        if generation is None:
            await shell.flows.reload_position(book)
            if not book.legs:  # its legs ended (cancelled, expired) while the position is still held
                await self.fallback(book, position, f"its OCO {earlier[-1].signal_event_id} ended before it sold")
            return
        made = ids.protection_ids(position.entry_client_order_id, generation)
        try:
            info = await shell.symbol_info(book)
        except ExchangeError as e:
            await self.fallback(book, position, f"exchangeInfo unavailable: {e.message}")
            return
        held = position.quantity + position.dust_in
        planned = plan_oco(position, held, info.filters, info.order_types, made, shell.settings.stop_limit_offset)
        if isinstance(planned, str):
            await self.fallback(book, position, planned)
            return
        try:
            async with shell.sessions.begin() as session:
                fresh = await store.get_position(session, position.id)
                if fresh is None or fresh.status != PositionStatus.OPEN or fresh.exit_reason:
                    return
                legs = await store.create_leg_intents(
                    session, fresh, planned, now_ms=shell.clock.now_ms(), market_time_ms=book.market.market_time_ms
                )
        except store.DuplicateOrderError:
            await shell.flows.reload_position(book)
            if not book.legs:  # its legs ended (cancelled) while the position is still held
                await self.fallback(book, position, f"its OCO {made.list_id} ended before the position was sold")
            return
        for leg in legs:
            await shell.order_update(leg)
        await self._send(book, position, planned, legs)

    async def _send(self, book: SymbolBook, position: Position, planned: OcoOrder, legs: Sequence[Order]) -> None:
        shell = self.shell
        wait = shell.exchange.blocked_for_s
        if 0 < wait <= shell.settings.max_retry_after_wait_s:
            await shell.clock.sleep(wait)
        if not await shell.lease.confirm(book.symbol):
            await self._settle_legs(legs, OrderStatus.REJECTED, "not sent: this replica no longer holds the lease")
            raise NotOwned(book.symbol)
        logger.info(
            "%s placing %s %s: SELL %s, %s at %s, take-profit %s %s",
            book.symbol,
            "stop" if planned.single else "OCO",
            planned.stop_client_order_id if planned.single else planned.list_client_order_id,
            format_decimal(planned.quantity),
            planned.stop_type,
            format_decimal(planned.stop_price),
            "watched by the bot at" if planned.single else "LIMIT_MAKER at",
            format_decimal(planned.take_profit),
        )
        try:
            if planned.single:  # a later generation: the stop alone (nothing rests to replace)
                body = await shell.exchange.place_stop_order(book.symbol, planned)
            else:
                body = await shell.exchange.place_oco(book.symbol, planned)
        except UnknownOutcome as e:
            await self._settle_legs(legs, OrderStatus.UNKNOWN, e.message[:200])
            await shell.alert(book, fx.Alert("warning", "order_unknown", f"OCO {planned.list_client_order_id}: {e}"))
            await self.query_legs(book, legs, attempts=shell.send_policy.query_attempts)
            book.settle_later(shell.clock.monotonic() + shell.settings.order_query_delay_s)
            await shell.flows.reload_position(book)
            return
        except (RateLimited, ClockSkew, RetryLater) as e:
            # Refused before it could execute: the bot watches meanwhile, the next check places it.
            await self._settle_legs(legs, OrderStatus.REJECTED, e.message[:200])
            await self.fallback(book, position, f"{e.message}; placed again at the next check", refused=False)
            return
        except ExchangeError as e:
            if isinstance(e, CredentialsRejected):
                await shell.exchange_trouble(book, e)
            if isinstance(e, Rejected) and "duplicate" in e.message.lower():
                # The list rests already (an earlier send the ledger never heard back from).
                await self.query_legs(book, legs, attempts=shell.send_policy.query_attempts)
                if book.guarded:
                    return
            await self._settle_legs(legs, OrderStatus.REJECTED, e.message[:200])
            await self.fallback(book, position, e.message)
            return
        await self.apply_list(book, body)
        book.resting_stop = (planned.stop_client_order_id, planned.stop_price)
        await shell.flows.reload_position(book)

    async def apply_list(self, book: SymbolBook, body: Mapping[str, Any]) -> None:
        """Record each leg of an order-list answer (placement or cancel), or the one order of a
        single order's answer; a cancel's report names the order in ``origClientOrderId``."""
        reports = body.get("orderReports") if "orderReports" in body else [body] if "orderId" in body else []
        for report in reports or ():
            known = report.get("origClientOrderId")
            await self.fills.apply_order_state(book, ledger.order_from_response(report), known_id=known)

    async def query_legs(self, book: SymbolBook, legs: Sequence[Order], attempts: int = 1) -> None:
        """Ask the exchange about each leg by its client id and record what it says."""
        for leg in legs:
            await self.settler.settle_by_query(book, leg, attempts=attempts)

    async def _settle_legs(self, legs: Sequence[Order], status: OrderStatus, reason: str) -> None:
        shell = self.shell
        async with shell.sessions.begin() as session:
            changed = []
            for leg in legs:
                fresh = await store.get_order(session, leg.client_order_id)
                if fresh is not None and fresh.status in (OrderStatus.INTENT, OrderStatus.UNKNOWN):
                    await store.update_order(session, fresh, now_ms=shell.clock.now_ms(), status=status, reason=reason)
                    changed.append(fresh)
        for leg in changed:
            await shell.order_update(leg)

    async def fallback(self, book: SymbolBook, position: Position, why: str, refused: bool = True) -> None:
        book.protect_refused = refused
        level = "error" if refused else "warning"
        await self.shell.alert(book, fx.Alert(level, "protection_fallback", refused_alert(position, why)))
        await self.shell.flows.reload_position(book)

    async def check(self, book: SymbolBook) -> None:
        """Ask about every resting leg of the symbol (a fill while nobody listened closes its
        position), then protect an open position that has no OCO (its legs never reached the
        exchange) unless placing one was refused already."""
        async with self.shell.sessions() as session:
            resting = [leg for leg in await store.live_legs(session, book.symbol) if leg.status in RESTING_LEG]
        await self.query_legs(book, resting)
        await self.shell.flows.reload_position(book)
        position = book.position
        if (
            self.enabled
            and position is not None
            and position.status == PositionStatus.OPEN
            and not position.exit_reason
            and not book.legs
            and not book.protect_refused
        ):
            await self.protect(book)

    async def _cancel(self, book: SymbolBook, leg: Order) -> None:
        """Cancel the protection ``leg`` belongs to: its OCO, or the single stop it is."""
        shell, list_id = self.shell, leg.signal_event_id
        try:
            if single_stop(ids.protection_generation(leg.client_order_id) or 1):  # a stop that replaced the list
                body = await shell.exchange.cancel_order(book.symbol, leg.client_order_id)
            else:
                body = await shell.exchange.cancel_order_list(book.symbol, list_id)
        except (Rejected, OrderNotFound) as e:
            logger.info("%s protection %s not cancelled (%s); its legs tell", book.symbol, list_id, e.message)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
        else:
            await self.apply_list(book, body)

    async def release(self, book: SymbolBook) -> bool:
        """Cancel the open position's OCO before the bot sells: True when nothing of it rests any
        more and the position is still OPEN (a leg that filled during the cancel closed it)."""
        position = book.position
        if position is None or not book.legs:
            return position is not None and position.status == PositionStatus.OPEN
        shell = self.shell
        async with shell.sessions() as session:
            live = [leg for leg in await store.live_legs(session, book.symbol) if leg.position_id == position.id]
        # Every generation that may rest, newest first: during a replacement whose outcome is
        # not known yet, the old list and the new stop both may.
        for leg in {leg.signal_event_id: leg for leg in reversed(live)}.values():
            await self._cancel(book, leg)
        # Whatever the answer said, each leg's own state decides: one may have filled meanwhile.
        async with shell.sessions() as session:
            legs = [leg for leg in await store.live_legs(session, book.symbol) if leg.position_id == position.id]
        await self.query_legs(book, legs, attempts=CANCEL_QUERY_ATTEMPTS)
        await shell.flows.reload_position(book)
        after = book.position
        return after is not None and after.id == position.id and after.status == PositionStatus.OPEN and not book.legs
