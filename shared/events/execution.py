"""What the executor publishes about orders, positions and problems."""

from __future__ import annotations

from decimal import Decimal

from shared.events.envelope import Payload
from shared.trading.vocabulary import BotState, Side

# What each state means, in the words the dashboard and the README use.
STATE_MEANINGS = {
    BotState.RUNNING: "running: entries and exits",
    BotState.ENTRIES_PAUSED: (
        "entries paused: no new entries; strategy exits, stop-loss, take-profit and manual close work"
    ),
    BotState.STOPPED: (
        "stopped: no new entries and no strategy exits, but stop-loss, take-profit and manual close "
        "keep working while a position is open"
    ),
    BotState.ERROR: "error: no new entries until started again; exits, stop-loss, take-profit and manual close work",
}


class OrderUpdate(Payload):
    """An order's state as the executor knows it: intent, submitted, filled, rejected, unknown."""

    TYPE = "order_update"

    symbol: str
    client_order_id: str
    side: Side
    # The ledger's ``OrderStatus`` values, kept as text: an exchange status this bot does not
    # know yet must still reach the dashboard rather than fail the executor's event.
    status: str
    quantity: Decimal
    executed_quantity: Decimal = Decimal(0)
    quote_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    reason: str = ""
    signal_event_id: str = ""


class PositionOpened(Payload):
    """A long position was opened; SL and TP are the protection levels watched on every tick."""

    TYPE = "position_opened"

    symbol: str
    entry_price: Decimal
    quantity: Decimal
    quote_spent: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    entry_time_ms: int
    client_order_id: str
    position_id: int | None = None
    entry_market_time_ms: int | None = None


class PositionClosed(Payload):
    """A position was closed; ``return_pct`` is the realised % after fees."""

    TYPE = "position_closed"

    symbol: str
    entry_price: Decimal
    exit_price: Decimal
    quantity: Decimal
    quote_spent: Decimal
    quote_received: Decimal
    return_pct: Decimal
    exit_reason: str
    entry_time_ms: int
    exit_time_ms: int
    client_order_id: str
    position_id: int | None = None
    entry_market_time_ms: int | None = None
    exit_market_time_ms: int | None = None
    dust_out: Decimal = Decimal(0)


class PositionSnapshot(Payload):
    """The active position of one symbol (status FLAT with nulls when none), as in ``executor:positions``."""

    TYPE = "position_snapshot"

    symbol: str
    status: str  # a ``PositionStatus`` of an active position, or FLAT
    trade_id: int | None = None
    entry_price: Decimal | None = None
    quantity: Decimal | None = None
    dust_quantity: Decimal | None = None
    entry_time_ms: int | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


class ExecutorAlert(Payload):
    """Something the trader should see: an exchange error, a skipped order, a recovery."""

    TYPE = "executor_alert"

    level: str
    code: str
    message: str
    symbol: str | None = None


class BotStateChanged(Payload):
    """The bot's trading state: running, stopped, entries_paused or error."""

    TYPE = "bot_state"

    state: BotState
    reason: str = ""
