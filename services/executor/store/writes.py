"""Writes of the ledger, one named function per change; each takes the caller's ``AsyncSession``
(the caller owns the transaction, so an intent, its position and their status change commit
together)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.store.reads import get_order
from shared.store.models import Order, Position
from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus, Side

ZERO = Decimal(0)
MARKET = "MARKET"  # exits, and entries unless ENTRY_ORDER=limit_maker (LIMIT_MAKER)


class DuplicateOrderError(Exception):
    """An order with this client order id is already in the ledger."""


async def create_exit_intent(
    session: AsyncSession,
    position: Position,
    *,
    client_order_id: str,
    quantity: Decimal,
    exit_reason: str,
    exit_candle_open_ms: int | None,
    signal_event_id: str,
    reason: str,
    now_ms: int,
    market_time_ms: int | None = None,
) -> Order:
    """Mark ``position`` CLOSING and write its exit order in status INTENT.

    An exit order with the same id that was REJECTED (it never existed on the exchange) is
    reused with the same id; any other existing order with that id raises ``DuplicateOrderError``.
    """
    order = await get_order(session, client_order_id)
    if order is not None:
        if order.status != OrderStatus.REJECTED or order.position_id != position.id:
            raise DuplicateOrderError(client_order_id)
        order.status = OrderStatus.INTENT
        order.requested_quantity = quantity
        order.executed_quantity = Decimal(0)
        order.cumulative_quote = Decimal(0)
        order.signal_event_id = signal_event_id
        order.reason = reason
        order.updated_at_ms = now_ms
        order.market_time_ms = market_time_ms
    else:
        order = Order(
            **_intent_values(
                client_order_id,
                position.symbol,
                Side.SELL,
                OrderPurpose.EXIT,
                quantity,
                signal_event_id,
                reason,
                now_ms,
                market_time_ms,
            )
        )
        order.position_id = position.id
        session.add(order)
    position.status = PositionStatus.CLOSING
    position.exit_reason = exit_reason
    position.exit_candle_open_ms = exit_candle_open_ms
    position.exit_market_time_ms = market_time_ms
    if position.exit_client_order_id is None:
        position.exit_client_order_id = client_order_id
    await session.flush()
    return order


def _intent_values(
    client_order_id: str,
    symbol: str,
    side: Side,
    purpose: OrderPurpose,
    quantity: Decimal,
    signal_event_id: str,
    reason: str,
    now_ms: int,
    market_time_ms: int | None,
) -> dict[str, Any]:
    """The columns of a new MARKET order in status INTENT, nothing executed yet."""
    return {
        "client_order_id": client_order_id,
        "symbol": symbol,
        "side": side,
        "order_type": MARKET,
        "purpose": purpose,
        "status": OrderStatus.INTENT,
        "requested_quantity": quantity,
        "executed_quantity": ZERO,
        "cumulative_quote": ZERO,
        "commission_base": ZERO,
        "commission_quote": ZERO,
        "signal_event_id": signal_event_id,
        "reason": reason,
        "created_at_ms": now_ms,
        "updated_at_ms": now_ms,
        "market_time_ms": market_time_ms,
    }


async def update_order(
    session: AsyncSession,
    order: Order,
    *,
    now_ms: int,
    status: str | None = None,
    exchange_order_id: int | None = None,
    executed_quantity: Decimal | None = None,
    cumulative_quote: Decimal | None = None,
    commission_base: Decimal | None = None,
    commission_quote: Decimal | None = None,
    reason: str | None = None,
    limit_price: Decimal | None = None,
    best_bid: Decimal | None = None,
) -> Order:
    """Change the given fields of ``order`` (None leaves a field as it is)."""
    if status is not None:
        order.status = OrderStatus(status)  # the column refuses a word outside the vocabulary
    if exchange_order_id is not None:
        order.exchange_order_id = exchange_order_id
    if executed_quantity is not None:
        order.executed_quantity = executed_quantity
    if cumulative_quote is not None:
        order.cumulative_quote = cumulative_quote
    if commission_base is not None:
        order.commission_base = commission_base
    if commission_quote is not None:
        order.commission_quote = commission_quote
    if reason is not None:
        order.reason = reason
    if limit_price is not None:
        order.limit_price = limit_price
    if best_bid is not None:
        order.best_bid = best_bid
    order.updated_at_ms = now_ms
    await session.flush()
    return order


async def mark_position_open(
    session: AsyncSession,
    position: Position,
    *,
    entry_price: Decimal,
    quantity: Decimal,
    quote_spent: Decimal,
    stop_loss: Decimal,
    take_profit: Decimal,
    entry_time_ms: int,
) -> Position:
    """The entry filled: record its average price, credited quantity, cost and protection levels."""
    position.status = PositionStatus.OPEN
    position.entry_price = entry_price
    position.quantity = quantity
    position.quote_spent = quote_spent
    position.stop_loss = stop_loss
    position.take_profit = take_profit
    position.entry_time_ms = entry_time_ms
    await session.flush()
    return position


async def mark_position_failed(session: AsyncSession, position: Position) -> Position:
    """The entry order ended without a fill: the position never existed."""
    position.status = PositionStatus.FAILED
    await session.flush()
    return position


async def reopen_position(session: AsyncSession, position: Position, *, keep_exit: bool = False) -> Position:
    """An exit order ended with base left to sell: the position is OPEN again. With ``keep_exit``
    the exit stays decided (its reason and candle are kept, so a restart retries it)."""
    position.status = PositionStatus.OPEN
    if not keep_exit:
        position.exit_reason = None
        position.exit_candle_open_ms = None
        position.exit_market_time_ms = None
    await session.flush()
    return position


async def mark_position_closed(
    session: AsyncSession,
    position: Position,
    *,
    exit_price: Decimal,
    quote_received: Decimal,
    return_pct: Decimal,
    exit_time_ms: int,
    dust_out: Decimal = Decimal(0),
) -> Position:
    """The exit filled: record its average price, net proceeds, realised return (%) and the
    base it left below one step (the bot's dust, sold by the next exit)."""
    position.status = PositionStatus.CLOSED
    position.dust_out = dust_out
    position.exit_price = exit_price
    position.quote_received = quote_received
    position.return_pct = return_pct
    position.exit_time_ms = exit_time_ms
    await session.flush()
    return position
