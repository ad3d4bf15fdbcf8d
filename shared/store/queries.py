"""Read-only queries over the ledger for the dashboard: orders, closed trades, open positions.

Rows come back as plain dicts with ``Decimal`` amounts; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.store.models import Fill, Order, Position
from shared.trading.profit import TradeRecord, order_fee_quote
from shared.trading.vocabulary import OrderPurpose, PositionStatus


def _order_row(order: Order, position: Position | None) -> dict[str, Any]:
    average = order.cumulative_quote / order.executed_quantity if order.executed_quantity else None
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "purpose": order.purpose,
        "status": order.status,
        "requested_quantity": order.requested_quantity,
        "executed_quantity": order.executed_quantity,
        "cumulative_quote": order.cumulative_quote,
        "average_price": average,
        "reason": order.reason,
        "created_at_ms": order.created_at_ms,
        "updated_at_ms": order.updated_at_ms,
        # Only the order that closed a position carries the trade's realised %.
        "return_pct": position.return_pct if position is not None else None,
        "exit_reason": position.exit_reason if position is not None else None,
    }


def _position_row(position: Position) -> dict[str, Any]:
    return {
        "id": position.id,
        "symbol": position.symbol,
        "status": position.status,
        "entry_price": position.entry_price,
        "exit_price": position.exit_price,
        "quantity": position.quantity,
        "quote_spent": position.quote_spent,
        "quote_received": position.quote_received,
        "stop_loss": position.stop_loss,
        "take_profit": position.take_profit,
        "entry_time_ms": position.entry_time_ms,
        "exit_time_ms": position.exit_time_ms,
        "exit_reason": position.exit_reason,
        "return_pct": position.return_pct,
    }


def _closed_exit_join() -> Any:
    return (Position.exit_client_order_id == Order.client_order_id) & (Position.status == PositionStatus.CLOSED)


async def list_orders(engine: AsyncEngine, limit: int, offset: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """Orders newest first; an exit order carries its closed trade's ``return_pct``."""
    query = select(Order, Position).outerjoin(Position, _closed_exit_join())
    if symbol:
        query = query.where(Order.symbol == symbol)
    query = query.order_by(Order.created_at_ms.desc(), Order.id.desc()).limit(limit).offset(offset)
    async with AsyncSession(engine) as session:
        rows = (await session.execute(query)).all()
    return [_order_row(order, position) for order, position in rows]


async def list_order_rows(
    engine: AsyncEngine, limit: int, offset: int, symbol: str | None = None
) -> list[tuple[Order, Position | None]]:
    """Orders newest first, each with its position (the trade it belongs to)."""
    query = select(Order, Position).outerjoin(Position, Position.id == Order.position_id)
    if symbol:
        query = query.where(Order.symbol == symbol)
    query = query.order_by(Order.created_at_ms.desc(), Order.id.desc()).limit(limit).offset(offset)
    async with AsyncSession(engine) as session:
        return [(order, position) for order, position in (await session.execute(query)).all()]


async def count_orders(engine: AsyncEngine, symbol: str | None = None) -> int:
    """How many orders ``list_orders`` pages through."""
    query = select(func.count(Order.id))
    if symbol:
        query = query.where(Order.symbol == symbol)
    async with AsyncSession(engine) as session:
        return int((await session.execute(query)).scalar_one())


async def list_trades(engine: AsyncEngine, limit: int, offset: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """Closed positions, most recently closed first, with their realised ``return_pct``."""
    query = select(Position).where(Position.status == PositionStatus.CLOSED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    query = query.order_by(Position.exit_time_ms.desc(), Position.id.desc()).limit(limit).offset(offset)
    async with AsyncSession(engine) as session:
        positions = (await session.execute(query)).scalars().all()
    return [_position_row(position) for position in positions]


async def count_trades(engine: AsyncEngine, symbol: str | None = None) -> int:
    """How many closed positions ``list_trades`` pages through."""
    query = select(func.count(Position.id)).where(Position.status == PositionStatus.CLOSED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    async with AsyncSession(engine) as session:
        return int((await session.execute(query)).scalar_one())


async def open_positions(engine: AsyncEngine, symbol: str | None = None) -> list[dict[str, Any]]:
    """Positions not closed yet (opening, open, closing), oldest first."""
    query = select(Position).where(Position.status != PositionStatus.CLOSED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    async with AsyncSession(engine) as session:
        positions = (await session.execute(query.order_by(Position.id))).scalars().all()
    return [_position_row(position) for position in positions]


async def positions_since(engine: AsyncEngine, symbol: str, since_ms: int) -> list[dict[str, Any]]:
    """Positions of ``symbol`` entered or exited at or after ``since_ms`` (chart trade markers)."""
    query = (
        select(Position)
        .where(Position.symbol == symbol)
        .where(or_(Position.entry_time_ms >= since_ms, Position.exit_time_ms >= since_ms))
        .order_by(Position.id)
    )
    async with AsyncSession(engine) as session:
        positions = (await session.execute(query)).scalars().all()
    return [_position_row(position) for position in positions]


# -- the trader's view: trades with their orders, as rows of the profit read model -------------


def _fee_quote(order: Order) -> Decimal:
    average = order.cumulative_quote / order.executed_quantity if order.executed_quantity else None
    return order_fee_quote(order.commission_base, order.commission_quote, average)


def trade_record(position: Position, orders: Sequence[Order]) -> TradeRecord:
    """One position and its orders as the profit read model's ``TradeRecord`` (market times)."""
    entries = [o for o in orders if o.purpose == OrderPurpose.ENTRY]
    exits = [o for o in orders if o.purpose == OrderPurpose.EXIT]
    return TradeRecord(
        id=position.id,
        symbol=position.symbol,
        status=position.status,
        entry_time_ms=market_entry_time(position),
        exit_time_ms=market_exit_time(position) if position.status == PositionStatus.CLOSED else None,
        entry_price=position.entry_price,
        exit_price=position.exit_price,
        quantity=position.quantity,
        sold_quantity=sum((o.executed_quantity for o in exits), Decimal(0)),
        quote_spent=position.quote_spent,
        quote_received=(
            position.quote_received
            if position.status == PositionStatus.CLOSED
            else sum((o.cumulative_quote - o.commission_quote for o in exits), Decimal(0))
        ),
        entry_fee_quote=sum((_fee_quote(o) for o in entries), Decimal(0)),
        exit_fee_quote=sum((_fee_quote(o) for o in exits), Decimal(0)),
        dust_in=position.dust_in or Decimal(0),
        dust_out=position.dust_out or Decimal(0),
    )


def market_entry_time(position: Position) -> int | None:
    """Market time of the entry decision; rows from before the stamp existed use the fill time."""
    return position.entry_market_time_ms if position.entry_market_time_ms is not None else position.entry_time_ms


def market_exit_time(position: Position) -> int | None:
    return position.exit_market_time_ms if position.exit_market_time_ms is not None else position.exit_time_ms


async def ledger_version(engine: AsyncEngine) -> tuple[int, ...]:
    """Changes whenever an order or a position changes (one query): orders and their newest update,
    positions, and how many are open, closed and failed (a position moves on in its own
    transaction, after its order's last update)."""

    def positions_in(status: str | None) -> Any:
        query = select(func.count(Position.id))
        return (query if status is None else query.where(Position.status == status)).scalar_subquery()

    query = select(
        select(func.count(Order.id)).scalar_subquery(),
        select(func.max(Order.updated_at_ms)).scalar_subquery(),
        positions_in(None),
        positions_in(PositionStatus.OPEN),
        positions_in(PositionStatus.CLOSED),
        positions_in(PositionStatus.FAILED),
    )
    async with AsyncSession(engine) as session:
        row = (await session.execute(query)).one()
    return tuple(int(value or 0) for value in row)


async def trades_with_orders(
    engine: AsyncEngine, symbol: str | None = None, position_ids: Sequence[int] | None = None
) -> list[tuple[Position, list[Order]]]:
    """Every position that holds or held base (not FAILED), with its orders, oldest first."""
    query = select(Position).where(Position.status != PositionStatus.FAILED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    if position_ids is not None:
        query = query.where(Position.id.in_(list(position_ids)))
    async with AsyncSession(engine) as session:
        positions = list((await session.execute(query.order_by(Position.id))).scalars())
        order_query = select(Order).where(Order.position_id.is_not(None))
        if symbol:
            order_query = order_query.where(Order.symbol == symbol)
        if position_ids is not None:
            order_query = order_query.where(Order.position_id.in_(list(position_ids)))
        orders = list((await session.execute(order_query.order_by(Order.id))).scalars())
    by_position: dict[int, list[Order]] = {}
    for order in orders:
        by_position.setdefault(order.position_id or 0, []).append(order)
    return [(position, by_position.get(position.id, [])) for position in positions]


async def trade_detail(engine: AsyncEngine, position_id: int) -> tuple[Position, list[Order], list[Fill]] | None:
    """One position with its orders and their fills (oldest first), or None."""
    async with AsyncSession(engine) as session:
        position = await session.get(Position, position_id)
        if position is None:
            return None
        orders = list(
            (await session.execute(select(Order).where(Order.position_id == position_id).order_by(Order.id))).scalars()
        )
        fills = (
            list(
                (
                    await session.execute(
                        select(Fill)
                        .where(Fill.client_order_id.in_([o.client_order_id for o in orders]))
                        .order_by(Fill.trade_id)
                    )
                ).scalars()
            )
            if orders
            else []
        )
    return position, orders, fills


async def order_with_position(engine: AsyncEngine, client_order_id: str) -> Order | None:
    """The order named ``client_order_id`` (an SSE order update joined with its ledger row)."""
    async with AsyncSession(engine) as session:
        return (
            await session.execute(select(Order).where(Order.client_order_id == client_order_id))
        ).scalar_one_or_none()
