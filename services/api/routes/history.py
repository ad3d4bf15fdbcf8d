"""Order and trade history from the executor's ledger (read-only)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, field_serializer
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from services.api.deps import EngineDep, Protected
from shared.store import queries

router = APIRouter(prefix="/api", tags=["history"], dependencies=Protected)
logger = logging.getLogger(__name__)
T = TypeVar("T")
Symbol = Query(None, pattern=r"^[A-Z0-9]{5,20}$")


class _Decimals(BaseModel):
    @field_serializer("*", when_used="json")
    def _decimal_text(self, value: Any) -> Any:
        return format(value, "f") if isinstance(value, Decimal) else value


class OrderRow(_Decimals):
    id: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    purpose: str
    status: str
    requested_quantity: Decimal
    executed_quantity: Decimal
    cumulative_quote: Decimal
    average_price: Decimal | None
    reason: str
    created_at_ms: int
    updated_at_ms: int
    return_pct: Decimal | None
    exit_reason: str | None


class TradeRow(_Decimals):
    id: int
    symbol: str
    status: str
    entry_price: Decimal | None
    exit_price: Decimal | None
    quantity: Decimal
    quote_spent: Decimal
    quote_received: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    entry_time_ms: int | None
    exit_time_ms: int | None
    exit_reason: str | None
    return_pct: Decimal | None


class OrderPage(BaseModel):
    items: list[OrderRow]
    total: int
    limit: int
    offset: int


class TradePage(BaseModel):
    items: list[TradeRow]
    total: int
    limit: int
    offset: int


async def _read(query: Awaitable[T]) -> T:
    try:
        return await query
    except (OperationalError, ProgrammingError, DBAPIError) as e:
        logger.warning("ledger not readable: %s", e.__class__.__name__)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "order history is not available yet") from None


@router.get("/orders", responses={503: {"description": "the ledger database is not ready"}})
async def orders(
    engine: EngineDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**31),
    symbol: str | None = Symbol,
) -> OrderPage:
    """Orders newest first; each exit order carries its closed trade's % result after fees."""
    rows = await _read(queries.list_orders(engine, limit, offset, symbol))
    total = await _read(queries.count_orders(engine, symbol))
    return OrderPage(items=[OrderRow(**row) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/trades", responses={503: {"description": "the ledger database is not ready"}})
async def trades(
    engine: EngineDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**31),
    symbol: str | None = Symbol,
) -> TradePage:
    """Closed trades, most recent first, with their realised % after fees."""
    rows = await _read(queries.list_trades(engine, limit, offset, symbol))
    total = await _read(queries.count_trades(engine, symbol))
    return TradePage(items=[TradeRow(**row) for row in rows], total=total, limit=limit, offset=offset)
