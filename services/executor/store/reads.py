"""Reads of the ledger, one named function per query; each takes the caller's ``AsyncSession``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.store.models import Fill, Order, Position
from shared.trading.ledger import UNSETTLED_STATUSES, FillTotals, totals
from shared.trading.vocabulary import OrderPurpose, PositionStatus

ACTIVE_POSITION_STATUSES = (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING)


async def get_order(session: AsyncSession, client_order_id: str) -> Order | None:
    """The order named ``client_order_id``, or None."""
    return (await session.execute(select(Order).where(Order.client_order_id == client_order_id))).scalar_one_or_none()


async def get_order_by_exchange_id(session: AsyncSession, symbol: str, exchange_order_id: int) -> Order | None:
    """The order the exchange knows as ``exchange_order_id`` on ``symbol``, or None."""
    query = select(Order).where(Order.symbol == symbol, Order.exchange_order_id == exchange_order_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_position(session: AsyncSession, position_id: int) -> Position | None:
    """The position with primary key ``position_id``."""
    return await session.get(Position, position_id)


async def active_position(session: AsyncSession, symbol: str) -> Position | None:
    """The OPENING, OPEN or CLOSING position of ``symbol`` (at most one), or None when flat."""
    query = (
        select(Position)
        .where(Position.symbol == symbol, Position.status.in_(ACTIVE_POSITION_STATUSES))
        .order_by(Position.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def symbols_with_history(session: AsyncSession) -> set[str]:
    """Every symbol the ledger holds an order or a position of (one query)."""
    query = select(Order.symbol).union(select(Position.symbol))
    return {str(symbol) for symbol in (await session.execute(query)).scalars()}


async def fills_of(session: AsyncSession, client_order_ids: Sequence[str]) -> list[Fill]:
    """Every recorded fill of the given orders, oldest trade first."""
    if not client_order_ids:
        return []
    query = select(Fill).where(Fill.client_order_id.in_(list(client_order_ids))).order_by(Fill.trade_id)
    return list((await session.execute(query)).scalars())


async def totals_of(session: AsyncSession, orders: Sequence[Order], base_asset: str, quote_asset: str) -> FillTotals:
    """The recorded fills of ``orders`` summed (for a position's exit orders: what has been sold so far)."""
    return totals(await fills_of(session, [o.client_order_id for o in orders]), base_asset, quote_asset)


async def orders_of_position(
    session: AsyncSession, position_id: int, purpose: OrderPurpose | None = None
) -> list[Order]:
    """The orders of one position (optionally only ``entry`` or ``exit``), oldest first."""
    query = select(Order).where(Order.position_id == position_id)
    if purpose is not None:
        query = query.where(Order.purpose == purpose)
    return list((await session.execute(query.order_by(Order.id))).scalars())


async def unsettled_orders(session: AsyncSession, symbol: str) -> list[Order]:
    """Orders of ``symbol`` whose outcome is not final yet (INTENT, SUBMITTED, UNKNOWN, ...)."""
    query = select(Order).where(Order.symbol == symbol, Order.status.in_(sorted(UNSETTLED_STATUSES))).order_by(Order.id)
    return list((await session.execute(query)).scalars())


async def last_trade_id(session: AsyncSession, symbol: str) -> int | None:
    """The highest trade id recorded for ``symbol``, or None before the first fill."""
    return (await session.execute(select(func.max(Fill.trade_id)).where(Fill.symbol == symbol))).scalar_one_or_none()


async def recent_orders(session: AsyncSession, symbol: str | None = None, limit: int = 100) -> list[Order]:
    """Newest orders first (all symbols when ``symbol`` is None)."""
    query = select(Order)
    if symbol is not None:
        query = query.where(Order.symbol == symbol)
    return list((await session.execute(query.order_by(Order.id.desc()).limit(limit))).scalars())


async def closed_positions(session: AsyncSession, symbol: str | None = None, limit: int = 100) -> list[Position]:
    """Closed trades, newest first (all symbols when ``symbol`` is None)."""
    query = select(Position).where(Position.status == PositionStatus.CLOSED)
    if symbol is not None:
        query = query.where(Position.symbol == symbol)
    return list((await session.execute(query.order_by(Position.id.desc()).limit(limit))).scalars())


def _exit_ms() -> ColumnElement[int | None]:
    """A closed position's exit in market time: when it was decided, else the fill's stamp."""
    return func.coalesce(Position.exit_market_time_ms, Position.exit_time_ms)


async def closed_after(session: AsyncSession, after_ms: int | None) -> list[Position]:
    """Closed positions whose exit (market time) is later than ``after_ms`` (all when None), in exit order."""
    query = select(Position).where(Position.status == PositionStatus.CLOSED)
    if after_ms is not None:
        query = query.where(_exit_ms() > after_ms)
    return list((await session.execute(query.order_by(_exit_ms(), Position.id))).scalars())


async def last_exit_ms(session: AsyncSession) -> int | None:
    """The latest exit (market time) of a closed position (None before the first)."""
    query = select(func.max(_exit_ms())).where(Position.status == PositionStatus.CLOSED)
    return (await session.execute(query)).scalar_one_or_none()
