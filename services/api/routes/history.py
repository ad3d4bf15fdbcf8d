"""Order and trade history from the executor's ledger (read-only), in market time and in each
symbol's precision."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from services.api.deps import EngineDep, LedgerDep, Protected, RedisDep
from shared import streams
from shared.codec import DecodeError, decode
from shared.events import Decision
from shared.store import queries
from shared.store.models import Position
from shared.trading.vocabulary import OrderPurpose, PositionStatus

router = APIRouter(prefix="/api", tags=["history"], dependencies=Protected)
logger = logging.getLogger(__name__)
Symbol = Query(None, pattern=r"^[A-Z0-9]{5,20}$")
LEDGER_NOT_READY: dict[int | str, dict[str, Any]] = {503: {"description": "the ledger database is not ready"}}
DECISION_SCAN = 5_000
DECISION_BEFORE_MS = 10 * 60_000
DECISION_AFTER_MS = 5_000


class OrderPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class TradePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


async def read_ledger[T](query: Awaitable[T]) -> T:
    """Await a ledger read; a ledger that does not exist yet is a 503, not a 500."""
    try:
        return await query
    except (OperationalError, ProgrammingError, DBAPIError) as e:
        logger.warning("ledger not readable: %s", e.__class__.__name__)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "order history is not available yet") from None


_read = read_ledger


@router.get("/orders", responses=LEDGER_NOT_READY)
async def orders(
    engine: EngineDep,
    ledger: LedgerDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**31),
    symbol: str | None = Symbol,
) -> OrderPage:
    """Orders newest first; each exit order that closed a trade carries its % result after fees."""
    await ledger.precisions.refresh()
    rows = await _read(queries.list_order_rows(engine, limit, offset, symbol))
    total = await _read(queries.count_orders(engine, symbol))
    return OrderPage(
        items=[ledger.order_row(order, position) for order, position in rows], total=total, limit=limit, offset=offset
    )


def _trade_order(trade: Position) -> tuple[int, int, int]:
    # Open trades first, then the most recently closed.
    closed = trade.status == PositionStatus.CLOSED
    return (1 if closed else 0, -(queries.market_exit_time(trade) or 0) if closed else -trade.id, -trade.id)


@router.get("/trades", responses=LEDGER_NOT_READY)
async def trades(
    ledger: LedgerDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**31),
    symbol: str | None = Symbol,
    status_: Literal["all", "open", "closed"] = Query("closed", alias="status"),
) -> TradePage:
    """Closed trades, most recently closed first (``status=all``: open trades first, then closed ones)."""
    every = await _read(ledger.trades())
    market = await ledger.market()
    chosen = [
        t
        for t in every
        if (symbol is None or t.position.symbol == symbol)
        and (status_ == "all" or (t.position.status == PositionStatus.CLOSED) == (status_ == "closed"))
    ]
    chosen.sort(key=lambda t: _trade_order(t.position))
    page = chosen[offset : offset + limit]
    return TradePage(
        items=[ledger.trade_row(t, market.prices.get(t.position.symbol)) for t in page],
        total=len(chosen),
        limit=limit,
        offset=offset,
    )


async def entry_decision(redis: RedisDep, position: Position, written_at_ms: int | None) -> dict[str, Any] | None:
    """The strategy's decision record of the trade's entry candle, from the decision log (if still kept).

    The decision was published (entry id = wall clock) shortly before the entry intent was
    written, so only the entries of the minutes before ``written_at_ms`` are read.
    """
    if position.entry_candle_open_ms is None or written_at_ms is None:
        return None
    wanted = str(position.entry_candle_open_ms)
    window = await redis.xrevrange(
        streams.DECISIONS,
        max=str(written_at_ms + DECISION_AFTER_MS),
        min=str(max(written_at_ms - DECISION_BEFORE_MS, 0)),
        count=DECISION_SCAN,
    )
    for _, fields in window or []:
        if not fields or fields.get("symbol") != position.symbol or fields.get("candle_open_time_ms") != wanted:
            continue
        try:
            payload = decode(fields).payload
        except DecodeError:
            continue
        if not isinstance(payload, Decision):
            continue
        return {
            "candle_open_time_ms": payload.candle_open_time_ms,
            "indicators": payload.indicators,
            "conditions": [c.model_dump(mode="json") for c in payload.conditions],
            "parameters_version": payload.parameters_version,
            "strategy": payload.strategy,
        }
    return None


@router.get("/trades/{trade_id}", responses={**LEDGER_NOT_READY, 404: {"description": "no such trade"}})
async def trade(trade_id: int, engine: EngineDep, redis: RedisDep, ledger: LedgerDep) -> dict[str, Any]:
    """One trade with its orders and fills, and the decision (indicators, conditions) of its entry candle."""
    if trade_id < 1 or trade_id > 2**62:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such trade")
    found = await _read(queries.trade_detail(engine, trade_id))
    if found is None or found[0].status == PositionStatus.FAILED:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such trade")
    position, orders_, fills = found
    market = await ledger.market()
    row = ledger.trade_row(ledger.trade_of(position, orders_), market.prices.get(position.symbol))
    by_id = {o.client_order_id: o for o in orders_}
    base = ledger.precisions.of(position.symbol).base_asset
    row["orders"] = [ledger.order_row(o, position) for o in orders_]
    row["fills"] = [ledger.fill_row(f, by_id.get(f.client_order_id), base) for f in fills]
    entry = next((o for o in orders_ if o.purpose == OrderPurpose.ENTRY), None)
    row["entry_decision"] = await entry_decision(redis, position, entry.created_at_ms if entry else None)
    return row
