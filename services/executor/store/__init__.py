"""The executor's writes and reads of the ledger database, one named function per query.

Every function takes an ``AsyncSession``; the caller owns the transaction
(``async with sessions.begin() as session``), so an intent, its position and their status
change commit together. Only the executor writes these tables.

Position statuses (``PositionStatus``): OPENING (entry order intended or working), OPEN,
CLOSING (exit order intended or working), CLOSED, and FAILED (the entry order ended without any fill).
"""

from services.executor.store.entry import EntryRead, create_entry_intent, read_entry
from services.executor.store.fills import record_fill, record_fills
from services.executor.store.legs import create_leg_intents, live_legs, mark_leg_exit
from services.executor.store.reads import (
    ACTIVE_POSITION_STATUSES,
    active_position,
    closed_after,
    closed_positions,
    fills_of,
    get_order,
    get_order_by_exchange_id,
    get_position,
    last_exit_ms,
    last_trade_id,
    orders_of_position,
    recent_orders,
    totals_of,
    unsettled_orders,
)
from services.executor.store.writes import (
    DuplicateOrderError,
    create_exit_intent,
    mark_position_closed,
    mark_position_failed,
    mark_position_open,
    reopen_position,
    update_order,
)

__all__ = [
    "ACTIVE_POSITION_STATUSES",
    "DuplicateOrderError",
    "EntryRead",
    "active_position",
    "closed_after",
    "closed_positions",
    "create_entry_intent",
    "create_exit_intent",
    "create_leg_intents",
    "fills_of",
    "get_order",
    "get_order_by_exchange_id",
    "get_position",
    "last_exit_ms",
    "last_trade_id",
    "live_legs",
    "mark_leg_exit",
    "mark_position_closed",
    "mark_position_failed",
    "mark_position_open",
    "orders_of_position",
    "read_entry",
    "recent_orders",
    "record_fill",
    "record_fills",
    "reopen_position",
    "totals_of",
    "unsettled_orders",
    "update_order",
]
