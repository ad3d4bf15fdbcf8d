"""What the decision core asks the shell to do, one frozen type per kind of effect.

The core never performs I/O: each decision returns its new state and a tuple of these, and the
shell performs them in order. ``LedgerChange`` types are written inside the transaction that
read the facts they were decided on; the others are performed after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.events import Outcome, Payload, Signal
from shared.trading.lifecycle import Closed, Opened
from shared.trading.protection import ExitReason

# -- reporting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """An ``executor_alert`` of the symbol; with ``repeat_s`` one per code at most that often."""

    level: str
    code: str
    message: str
    repeat_s: float | None = None


@dataclass(frozen=True)
class Publish:
    """An event on ``executor:events`` under ``event_id``."""

    payload: Payload
    event_id: str | None = None


@dataclass(frozen=True)
class Answer:
    """An answer to one operator command about this symbol."""

    command_id: str
    command: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class AnswerCloses:
    """Answer every operator close waiting on this symbol (``closes.answer_closes``)."""

    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """Publish the symbol's position snapshot as the ledger holds it now."""


@dataclass(frozen=True)
class Note:
    """A decision-log record saying what became of a signal the executor did not act on."""

    signal: Signal
    note: str


# -- orders and exits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestExit:
    """Sell the open position (``exits.request_exit``); with ``answer_refusal`` a refusal answers
    the waiting closes REFUSED; with ``only_when_open`` nothing happens unless it is OPEN."""

    reason: ExitReason
    candle_open_ms: int | None
    source_event_id: str
    price: Decimal | None = None
    explicit: bool = False
    market_time_ms: int | None = None
    answer_refusal: bool = False
    only_when_open: bool = False


@dataclass(frozen=True)
class RefuseOrder:
    """The order being sent definitely does not exist (``refusals.refuse_order``)."""

    message: str
    code: int | None
    definite: bool = False


@dataclass(frozen=True)
class ApplyAnswer:
    """Record the exchange's answer about the order being sent (a FULL response or a query)."""

    body: Mapping[str, Any]


@dataclass(frozen=True)
class MarkUnknown:
    """The order's outcome is unknown: INTENT becomes UNKNOWN with ``reason``."""

    reason: str


@dataclass(frozen=True)
class SettleLater:
    """Query the symbol's unsettled orders again in ``delay_s`` (monotonic), ticks or not."""

    delay_s: float


@dataclass(frozen=True)
class SettleNow:
    """Settle the symbol's unsettled orders now."""


@dataclass(frozen=True)
class EnterError:
    """Put the bot in ``error`` (the exchange refused the credentials)."""

    reason: str


@dataclass(frozen=True)
class RefreshSymbolInfo:
    """Read the symbol's filters again (the exchange said an order broke one)."""


Effect = (
    Alert
    | Publish
    | Answer
    | AnswerCloses
    | Snapshot
    | Note
    | RequestExit
    | RefuseOrder
    | ApplyAnswer
    | MarkUnknown
    | SettleLater
    | SettleNow
    | EnterError
    | RefreshSymbolInfo
)

# -- ledger changes (inside the transaction) -------------------------------------------------------


@dataclass(frozen=True)
class MarkOpen:
    """The entry filled: the position is OPEN with these figures and levels."""

    opened: Opened


@dataclass(frozen=True)
class MarkFailed:
    """The entry ended without a fill: the position never existed."""


@dataclass(frozen=True)
class Reopen:
    """The exit ended with base left: OPEN again; ``keep_exit`` keeps the exit decided."""

    keep_exit: bool


@dataclass(frozen=True)
class MarkClosed:
    """The exits sold all but dust: the position is CLOSED."""

    closed: Closed


@dataclass(frozen=True)
class RejectOrder:
    """The order is REJECTED with ``reason`` (it never existed on the exchange)."""

    reason: str


LedgerChange = MarkOpen | MarkFailed | Reopen | MarkClosed | RejectOrder
