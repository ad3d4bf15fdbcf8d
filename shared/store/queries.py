"""Read-only queries over the ledger for the dashboard: orders, closed trades, open positions.

Rows come back as plain dicts with ``Decimal`` amounts; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.store.models import Order, Position

CLOSED = "CLOSED"


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
    return (Position.exit_client_order_id == Order.client_order_id) & (Position.status == CLOSED)


async def list_orders(engine: AsyncEngine, limit: int, offset: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """Orders newest first; an exit order carries its closed trade's ``return_pct``."""
    query: Select[Any] = select(Order, Position).outerjoin(Position, _closed_exit_join())
    if symbol:
        query = query.where(Order.symbol == symbol)
    query = query.order_by(Order.created_at_ms.desc(), Order.id.desc()).limit(limit).offset(offset)
    async with AsyncSession(engine) as session:
        rows = (await session.execute(query)).all()
    return [_order_row(order, position) for order, position in rows]


async def count_orders(engine: AsyncEngine, symbol: str | None = None) -> int:
    """How many orders ``list_orders`` pages through."""
    query = select(func.count(Order.id))
    if symbol:
        query = query.where(Order.symbol == symbol)
    async with AsyncSession(engine) as session:
        return int((await session.execute(query)).scalar_one())


async def list_trades(engine: AsyncEngine, limit: int, offset: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """Closed positions, most recently closed first, with their realised ``return_pct``."""
    query = select(Position).where(Position.status == CLOSED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    query = query.order_by(Position.exit_time_ms.desc(), Position.id.desc()).limit(limit).offset(offset)
    async with AsyncSession(engine) as session:
        positions = (await session.execute(query)).scalars().all()
    return [_position_row(position) for position in positions]


async def count_trades(engine: AsyncEngine, symbol: str | None = None) -> int:
    """How many closed positions ``list_trades`` pages through."""
    query = select(func.count(Position.id)).where(Position.status == CLOSED)
    if symbol:
        query = query.where(Position.symbol == symbol)
    async with AsyncSession(engine) as session:
        return int((await session.execute(query)).scalar_one())


async def open_positions(engine: AsyncEngine, symbol: str | None = None) -> list[dict[str, Any]]:
    """Positions not closed yet (opening, open, closing), oldest first."""
    query = select(Position).where(Position.status != CLOSED)
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

