"""The ledger's rows of the OCO protecting a position: its two legs (orders of purpose
``protect``), written as intents before the list is sent, and the exit a filled leg records."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor.core.guard import LIVE_STATUSES, OcoOrder
from services.executor.store.reads import get_order
from services.executor.store.writes import DuplicateOrderError, _intent_values
from shared.store.models import Order, Position
from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus, Side


async def create_leg_intents(
    session: AsyncSession, position: Position, oco: OcoOrder, *, now_ms: int, market_time_ms: int | None
) -> list[Order]:
    """Write both legs in status INTENT (stop-loss first; the stop alone when ``oco.single``).
    Legs REJECTED before (they never existed) are reused under their ids; any other existing leg
    raises ``DuplicateOrderError``."""
    legs = []
    wanted: list[tuple[str, str, str, Decimal | None, Decimal | None]] = [
        (oco.stop_client_order_id, oco.stop_type, "stop-loss leg", oco.stop_limit_price, oco.stop_price)
    ]
    if not oco.single:
        wanted.append((oco.take_profit_client_order_id, "LIMIT_MAKER", "take-profit leg", oco.take_profit, None))
    for client_id, order_type, note, limit, stop in wanted:
        order = await get_order(session, client_id)
        if order is not None:
            if order.status != OrderStatus.REJECTED or order.position_id != position.id:
                raise DuplicateOrderError(client_id)
            order.status = OrderStatus.INTENT
            order.requested_quantity = oco.quantity
            order.updated_at_ms = now_ms
        else:
            order = Order(
                **_intent_values(
                    client_id,
                    position.symbol,
                    Side.SELL,
                    OrderPurpose.PROTECT,
                    oco.quantity,
                    oco.list_client_order_id,
                    "stop-loss order replacing the stop leg" if oco.single else f"{note} of {oco.list_client_order_id}",
                    now_ms,
                    market_time_ms,
                )
            )
            order.order_type = order_type
            order.position_id = position.id
            session.add(order)
        order.limit_price, order.stop_price = limit, stop
        legs.append(order)
    await session.flush()
    return legs


async def mark_leg_exit(
    session: AsyncSession, position: Position, *, leg: Order, exit_reason: str, stamp_ms: int, interval_ms: int
) -> Position:
    """A leg sold: the position is CLOSING by it, recorded in the candle of the exchange's stamp
    of its last fill (the exchange decided it: there is no tick of ours)."""
    position.status = PositionStatus.CLOSING
    position.exit_reason = exit_reason
    position.exit_market_time_ms = stamp_ms
    position.exit_candle_open_ms = stamp_ms // interval_ms * interval_ms
    if position.exit_client_order_id is None:
        position.exit_client_order_id = leg.client_order_id
    await session.flush()
    return position


async def live_legs(session: AsyncSession, symbol: str) -> list[Order]:
    """Legs of ``symbol`` that may still rest on the exchange (or be about to), oldest first."""
    query = select(Order).where(
        Order.symbol == symbol, Order.purpose == OrderPurpose.PROTECT, Order.status.in_(sorted(LIVE_STATUSES))
    )
    return list((await session.execute(query.order_by(Order.id))).scalars())
