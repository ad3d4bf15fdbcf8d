"""Exits: a stop-loss or take-profit price, the strategy's SELL signal, an operator's close, and
the retry of an exit already decided. ``core.exits`` decides; this writes the intent and sends it."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import NotOwned, Shell
from services.executor.core.effects import Alert, AnswerCloses
from services.executor.core.exits import Controls, ExitOrder, ExitRequest, Stop, plan, trigger, unavailable
from services.executor.core.state import schedule_retry
from services.executor.errors import ExchangeError
from services.executor.exchange import SymbolInfo
from services.executor.guard import Guard
from services.executor.sender import Sender
from services.executor.settle import Settler
from shared.events import Outcome
from shared.store.models import Position
from shared.trading.protection import ExitReason
from shared.trading.sizing import format_decimal
from shared.trading.vocabulary import OrderPurpose, PositionStatus

logger = logging.getLogger(__name__)


class Exits:
    """Turns exit triggers into exit orders."""

    def __init__(self, shell: Shell, sender: Sender, settler: Settler, guard: Guard) -> None:
        self.shell = shell
        self.sender = sender
        self.settler = settler
        self.guard = guard

    async def request_exit(self, book: SymbolBook, request: ExitRequest) -> str:
        """Sell what the open position holds, with the bot's dust.

        Returns why no exit is under way ("" when an exit order was sent or will be retried).
        Only a new SELL signal waits for the bot state: stop-loss, take-profit, manual close
        and the rest of an exit already begun go through in every state.
        """
        shell = self.shell
        controls = Controls(shell.control.strategy_exits_allowed, shell.control.entry_refusal())
        go = trigger(book.position, request, book.exit, controls, shell.clock.monotonic())
        if isinstance(go, Stop):
            await shell.perform(book, go.effects)
            return go.refusal
        position = book.position
        assert position is not None
        try:
            info = await shell.symbol_info(book)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
            book.exit, effects = unavailable(
                go, e.message, book.exit, shell.clock.monotonic(), shell.exit_policy, shell.exchange.blocked_for_s
            )
            await shell.perform(book, effects)
            return ""
        if book.legs and not await self._release(book, go):
            return ""
        position = book.position
        assert position is not None
        async with shell.sessions() as session:
            exits = await store.orders_of_position(session, position.id, OrderPurpose.EXIT)
            # What a leg of the cancelled OCO sold before the cancel is not the bot's to sell.
            legs = await store.orders_of_position(session, position.id, OrderPurpose.PROTECT)
            sold_by = [*exits, *(leg for leg in legs if leg.executed_quantity > 0)]
            sold = (await store.totals_of(session, sold_by, info.base_asset, info.quote_asset)).quantity
        market_time_ms = go.market_time_ms
        if market_time_ms is None:
            market_time_ms = book.market.market_time_ms or await shell.market_clock(book.symbol)
        planned = plan(position, exits, sold, info.filters, info.base_asset, go, go.price or book.market.last_price)
        if isinstance(planned, Stop):
            if planned.ends_pending:
                book.exit = book.exit.cleared()
            await shell.perform(book, planned.effects)
            return planned.refusal
        return await self._send(book, position, go, planned, market_time_ms, info)

    async def _release(self, book: SymbolBook, go: ExitRequest) -> bool:
        """Cancel the OCO first (never two orders selling the same base). False: the exit does
        not go on now; a leg sold (the position is closed by it) or the OCO may still rest, and
        then the exit stays decided and is tried again soon."""
        shell = self.shell
        if await self.guard.release(book):
            return True
        position = book.position
        if position is None or position.status != PositionStatus.OPEN:
            return False  # closed by a leg that filled meanwhile (its close answers the operator)
        book.exit, delay = schedule_retry(
            replace(book.exit, pending=go.decided),
            shell.clock.monotonic(),
            shell.exit_policy,
            shell.exchange.blocked_for_s,
        )
        message = (
            f"{go.reason.value} exit waits: the OCO of the position is not cancelled yet; tried again in {delay:.1f}s"
        )
        await shell.perform(book, (Alert("warning", "exit_pending", message), AnswerCloses(Outcome.ACCEPTED, message)))
        return False

    async def _send(
        self,
        book: SymbolBook,
        position: Position,
        request: ExitRequest,
        planned: ExitOrder,
        market_time_ms: int | None,
        info: SymbolInfo,
    ) -> str:
        shell = self.shell
        try:
            async with shell.sessions.begin() as session:
                fresh = await store.get_position(session, position.id)
                assert fresh is not None
                order = await store.create_exit_intent(
                    session,
                    fresh,
                    client_order_id=planned.client_order_id,
                    quantity=planned.quantity,
                    exit_reason=request.reason.value,
                    exit_candle_open_ms=request.candle_open_ms,
                    signal_event_id=request.source_event_id,
                    reason=planned.note,
                    now_ms=shell.clock.now_ms(),
                    market_time_ms=market_time_ms,
                )
        except store.DuplicateOrderError:
            logger.warning("%s exit %s exists already; settling it", book.symbol, planned.client_order_id)
            await self.settler.settle_symbol(book)
            return ""
        book.exit = book.exit.cleared()
        book.position = fresh
        await shell.sink.snapshot(book.symbol, fresh, book.protection)
        await shell.order_update(order)
        await shell.answer_closes(
            book,
            Outcome.ACCEPTED,
            f"exit order {planned.client_order_id} sent: "
            f"MARKET SELL {format_decimal(planned.quantity)} {info.base_asset}",
        )
        await self.sender.execute(book, order)
        return ""

    async def retry_exit(self, book: SymbolBook) -> None:
        """Send the pending exit again, without waiting for a price."""
        pending = book.exit.pending
        if pending is None or book.position is None or book.position.status != PositionStatus.OPEN:
            return
        try:
            await self.request_exit(
                book, ExitRequest(ExitReason(pending.reason), pending.candle_open_ms, pending.source_event_id)
            )
        except NotOwned:
            logger.warning("%s lease lost before the exit was sent again; the next owner sends it", book.symbol)
        except Exception:
            logger.exception("%s pending exit not sent; tried again", book.symbol)
            if book.exit.pending is not None and book.exit.due is None:
                shell = self.shell
                book.exit, _ = schedule_retry(
                    book.exit, shell.clock.monotonic(), shell.exit_policy, shell.exchange.blocked_for_s
                )
