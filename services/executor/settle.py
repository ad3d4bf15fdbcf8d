"""Settling orders whose outcome is not final: query them by client order id and apply the
answer; a position left OPENING or CLOSING behind a final order is moved on."""

from __future__ import annotations

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.sending import QueryOutcome, QueryStep, after_settling_query, query_step
from services.executor.errors import ExchangeError
from services.executor.fills import Fills
from services.executor.positions import Positions
from shared.store.models import Order
from shared.trading.ledger import FINAL_STATUSES
from shared.trading.vocabulary import OrderPurpose, PositionStatus


class Settler:
    """Queries unsettled orders and applies what the exchange knows."""

    def __init__(self, shell: Shell, fills: Fills, positions: Positions) -> None:
        self.shell = shell
        self.fills = fills
        self.positions = positions

    async def settle_by_query(
        self, book: SymbolBook, order: Order, *, first_delay: bool = False, attempts: int | None = None
    ) -> QueryOutcome:
        """Ask the exchange about ``order`` by client order id (bounded retries) and apply the answer."""
        shell = self.shell
        for attempt in range(attempts or shell.send_policy.query_attempts):
            if attempt > 0 or first_delay:
                await shell.clock.sleep(shell.settings.order_query_delay_s)
            try:
                body = await shell.exchange.query_order(book.symbol, order.client_order_id)
            except ExchangeError as e:
                step = query_step(e, shell.send_policy)
                if step is QueryStep.RETRY:
                    continue
                if step is QueryStep.TROUBLE:
                    await shell.exchange_trouble(book, e)
                return QueryOutcome.NOT_FOUND if step is QueryStep.NOT_FOUND else QueryOutcome.INCONCLUSIVE
            await self.fills.apply_answer(book, order, body)
            return QueryOutcome.FOUND
        return QueryOutcome.INCONCLUSIVE

    async def settle_symbol(self, book: SymbolBook) -> None:
        """Settle every order of the symbol whose outcome is not final (restart, unknown outcome)."""
        shell = self.shell
        book.last_settle = shell.clock.monotonic()
        async with shell.sessions() as session:
            pending = await store.unsettled_orders(session, book.symbol)
        for order in pending:
            # One query each: this runs between events and must not hold the other symbols up.
            outcome = await self.settle_by_query(book, order, attempts=1)
            age_s = (shell.clock.now_ms() - order.updated_at_ms) / 1000
            await shell.perform(book, after_settling_query(order.status, outcome, age_s, shell.send_policy), order)
        # A position whose final order was recorded but not yet applied (stopped in between).
        async with shell.sessions() as session:
            position = await store.active_position(session, book.symbol)
            orders = await store.orders_of_position(session, position.id) if position is not None else []
        if position is not None and position.status in (PositionStatus.OPENING, PositionStatus.CLOSING) and orders:
            last = orders[-1]
            if last.purpose == OrderPurpose.PROTECT:  # the legs come after the entry: the one that sold
                last = next((o for o in orders if o.client_order_id == position.exit_client_order_id), last)
            if last.status in FINAL_STATUSES:
                await self.fills.complete_fills(book, last)
                await self.positions.finalize(book, last.client_order_id)
        await self.positions.reload_position(book)
