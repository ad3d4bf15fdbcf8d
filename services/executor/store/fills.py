"""The ledger's fills: each trade of an order is stored once, keyed by the exchange's trade id
(a unique constraint), whichever source brings it first and however often it comes back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.executor import metrics
from shared.store.models import Fill, Order
from shared.trading.ledger import FillData


def _fill_row(order: Order, fill: FillData) -> dict[str, object]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "trade_id": fill.trade_id,
        "price": fill.price,
        "quantity": fill.quantity,
        "quote_quantity": fill.quote_quantity,
        "commission": fill.commission,
        "commission_asset": fill.commission_asset,
        "time_ms": fill.time_ms,
        "market_time_ms": order.market_time_ms,
    }


async def record_fill(session: AsyncSession, order: Order, fill: FillData) -> bool:
    """Store ``fill`` of ``order`` unless its trade id is known already; True when new."""
    query = select(Fill.id).where(Fill.symbol == order.symbol, Fill.trade_id == fill.trade_id)
    if (await session.execute(query)).first() is not None:
        return False
    try:
        async with session.begin_nested():
            await session.execute(insert(Fill), [_fill_row(order, fill)])
    except IntegrityError:
        return False
    metrics.FILLS.labels(order.symbol, order.side).inc()
    return True


async def record_fills(session: AsyncSession, order: Order, fills: Sequence[FillData]) -> int:
    """Store the fills of ``order`` whose trade ids are not known yet; how many were new.

    One read of the known trade ids and one multi-row insert, whatever the count: a large MARKET
    order walks the book and comes back with a fill per level (ten and more), and a statement per
    fill made the answer's bookkeeping the slowest part of an entry. Should another writer store
    one of them between the read and the insert (the unique trade id refuses the batch), each is
    stored on its own instead, so every fill still counts once."""
    fresh: dict[int, FillData] = {}
    for fill in fills:
        fresh.setdefault(fill.trade_id, fill)
    if not fresh:
        return 0
    query = select(Fill.trade_id).where(Fill.symbol == order.symbol, Fill.trade_id.in_(list(fresh)))
    for (known,) in (await session.execute(query)).all():
        fresh.pop(known, None)
    if not fresh:
        return 0
    try:
        async with session.begin_nested():
            await session.execute(insert(Fill), [_fill_row(order, fill) for fill in fresh.values()])
    except IntegrityError:
        return sum([await record_fill(session, order, fill) for fill in fresh.values()])
    metrics.FILLS.labels(order.symbol, order.side).inc(len(fresh))
    return len(fresh)
