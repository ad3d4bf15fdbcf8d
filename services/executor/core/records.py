"""What the exchange says about one of the bot's orders, merged into the ledger's order.

Fills are keyed by trade id, so an answer seen twice (FULL response, execution report, query)
changes nothing; a final status is never replaced by a working one; an order REJECTED by the
bot (it never reached the exchange) stays so unless the exchange shows it with its own id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.executor.core.state import OrderFacts
from shared.trading.ledger import FillTotals, OrderState, stored_status
from shared.trading.vocabulary import OrderStatus


@dataclass(frozen=True)
class OrderChange:
    """The order's fields after the answer (quantities in base, amounts in quote)."""

    status: str
    exchange_order_id: int | None
    executed_quantity: Decimal
    cumulative_quote: Decimal
    commission_base: Decimal
    commission_quote: Decimal


def merge_answer(order: OrderFacts, answer: OrderState, fills: FillTotals) -> OrderChange:
    """The order after ``answer``, given every fill recorded for it (``fills``)."""
    status = stored_status(answer.status, order.status)
    if order.status == OrderStatus.REJECTED and status != OrderStatus.REJECTED and answer.exchange_order_id is None:
        status = order.status
    return OrderChange(
        status=status,
        exchange_order_id=answer.exchange_order_id,
        executed_quantity=max(order.executed_quantity, answer.executed_quantity, fills.quantity),
        cumulative_quote=max(order.cumulative_quote, answer.cumulative_quote, fills.quote),
        commission_base=fills.commission_base,
        commission_quote=fills.commission_quote,
    )
