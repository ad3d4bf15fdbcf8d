"""The entry intent: an OPENING position and its entry order in status INTENT, written in the
caller's transaction before anything is sent.

Three Core statements built once (the duplicate check and the bot's dust in one read, then the
two inserts): on the entry path the ORM's unit of work and each statement's round trip to the
database cost more than the writes themselves, and at a minute close many symbols enter one
after the other. The read (``read_entry``) can be made before the transaction, at the same time
as the entry's other reads, so that the transaction is the two inserts alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from services.executor.store.writes import MARKET, ZERO, DuplicateOrderError, _intent_values
from shared.store.models import Order, Position
from shared.trading.vocabulary import OrderPurpose, PositionStatus, Side

ORDERS = cast(Table, Order.__table__)
POSITIONS = cast(Table, Position.__table__)
# Built once: executed with each intent's values as parameters, compiled once per connection.
# The id's order if the id is taken, and the dust the symbol's last closed position left.
_TAKEN_AND_DUST = select(
    select(ORDERS.c.id).where(ORDERS.c.client_order_id == bindparam("client_order_id")).scalar_subquery(),
    select(POSITIONS.c.dust_out)
    .where(POSITIONS.c.symbol == bindparam("symbol"), POSITIONS.c.status == PositionStatus.CLOSED)
    .order_by(POSITIONS.c.id.desc())
    .limit(1)
    .scalar_subquery(),
)
_INSERT_POSITION = insert(POSITIONS).returning(POSITIONS.c.id)
_INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)


@dataclass(frozen=True, slots=True)
class EntryRead:
    """What an entry's intent depends on in the ledger: whether its client order id is taken (the
    signal was handled before), and the dust of the symbol the new position takes over."""

    taken: bool
    dust: Decimal


async def read_entry(session: AsyncSession, client_order_id: str, symbol: str) -> EntryRead:
    """The ledger's ``EntryRead`` for the entry ``client_order_id`` of ``symbol`` (one statement)."""
    connection = await session.connection()
    row = (await connection.execute(_TAKEN_AND_DUST, {"client_order_id": client_order_id, "symbol": symbol})).one()
    return EntryRead(row[0] is not None, ZERO if row[1] is None else row[1])


async def create_entry_intent(
    session: AsyncSession,
    *,
    symbol: str,
    client_order_id: str,
    quantity: Decimal,
    signal_event_id: str,
    reason: str,
    entry_candle_open_ms: int | None,
    now_ms: int,
    market_time_ms: int | None = None,
    parameters_version: int | None = None,
    strategy: str | None = None,
    entry_indicators: str | None = None,
    order_type: str = MARKET,
    limit_price: Decimal | None = None,
    best_bid: Decimal | None = None,
    read: EntryRead | None = None,
) -> tuple[Position, Order]:
    """An OPENING position and its entry order in status INTENT (before anything is sent).

    The position takes over the bot's dust of the symbol (what the last exit left below one
    step), so its exit sells it too. Raises ``DuplicateOrderError`` when the id was used
    already; the caller's transaction is then to be rolled back (leaving its ``sessions.begin()``
    block with the error does). ``read``: this entry's ``read_entry``, made before this
    transaction under the symbol's book lock (only a close, under that lock, changes the dust);
    None reads it here. A duplicate that raced it fails on the ids' unique columns."""
    read = read or await read_entry(session, client_order_id, symbol)
    if read.taken:
        raise DuplicateOrderError(client_order_id)
    position_values = _row(
        POSITIONS,
        symbol=symbol,
        status=PositionStatus.OPENING,
        entry_client_order_id=client_order_id,
        quantity=ZERO,
        quote_spent=ZERO,
        entry_candle_open_ms=entry_candle_open_ms,
        entry_market_time_ms=market_time_ms,
        dust_in=read.dust,
        dust_out=ZERO,
        parameters_version=parameters_version,
        strategy=strategy,
        entry_indicators=entry_indicators,
    )
    intent = _intent_values(
        client_order_id, symbol, Side.BUY, OrderPurpose.ENTRY, quantity, signal_event_id, reason, now_ms, market_time_ms
    )
    priced = {"order_type": order_type, "limit_price": limit_price, "best_bid": best_bid}
    order_values = _row(ORDERS, **{**intent, **priced})
    connection = await session.connection()
    try:
        position_id = (await connection.execute(_INSERT_POSITION, position_values)).scalar_one()
        order_values["position_id"] = position_id
        order_id = (await connection.execute(_INSERT_ORDER, order_values)).scalar_one()
    except IntegrityError as e:
        raise DuplicateOrderError(client_order_id) from e
    return _attached(session, Position(id=position_id, **position_values)), _attached(
        session, Order(id=order_id, **order_values)
    )


def _attached[Row: (Position, Order)](session: AsyncSession, row: Row) -> Row:
    """``row`` persistent in ``session``, as a row it loaded: a later change to it there is an UPDATE."""
    make_transient_to_detached(row)
    session.add(row)
    return row


def _row(table: Table, **values: Any) -> dict[str, Any]:
    """Every column of ``table`` but its key, None unless given: a row object built from it has
    every attribute loaded (one left out would be read back from the database)."""
    names = [column.name for column in table.columns if not column.primary_key]
    unknown = set(values) - set(names)
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    return {name: values.get(name) for name in names}
