"""The decision core's view of one symbol: the ledger facts it reads, and the state it keeps.

``PositionFacts`` and ``OrderFacts`` name the fields of a ledger position and order the core
reads (the store's rows have them), read-only: the core never changes them, it returns ledger
changes.
``ExitState`` (a decided exit waiting to be sent again, and its pacing) and ``CloseRequest``
(an operator's close being answered) are replaced, never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from services.executor.core.effects import Answer
from shared.events import Outcome
from shared.trading.lifecycle import DecidedExit, exit_retry_delay


class PositionFacts(Protocol):
    """What the core reads of a ledger position."""

    @property
    def id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def entry_client_order_id(self) -> str: ...
    @property
    def entry_price(self) -> Decimal | None: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def quote_spent(self) -> Decimal: ...
    @property
    def stop_loss(self) -> Decimal | None: ...
    @property
    def take_profit(self) -> Decimal | None: ...
    @property
    def entry_time_ms(self) -> int | None: ...
    @property
    def entry_candle_open_ms(self) -> int | None: ...
    @property
    def entry_market_time_ms(self) -> int | None: ...
    @property
    def exit_reason(self) -> str | None: ...
    @property
    def exit_candle_open_ms(self) -> int | None: ...
    @property
    def exit_market_time_ms(self) -> int | None: ...
    @property
    def dust_in(self) -> Decimal: ...


class OrderFacts(Protocol):
    """What the core reads of a ledger order."""

    @property
    def client_order_id(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def executed_quantity(self) -> Decimal: ...
    @property
    def cumulative_quote(self) -> Decimal: ...
    @property
    def exchange_order_id(self) -> int | None: ...
    @property
    def signal_event_id(self) -> str: ...
    @property
    def updated_at_ms(self) -> int: ...


@dataclass(frozen=True)
class ExitPolicy:
    """How a decided exit that could not be placed is paced (seconds)."""

    query_delay_s: float
    exit_retry_s: float


@dataclass(frozen=True)
class ExitState:
    """A decided exit not under way (``pending``), when it is sent again (``due``, monotonic s),
    how often it was refused in a row, and before when a price may not trigger a new exit."""

    pending: DecidedExit | None = None
    due: float | None = None
    refusals: int = 0
    retry_at: float = 0.0

    def cleared(self) -> ExitState:
        """No exit pending any more (sent, or nothing left to sell)."""
        return replace(self, pending=None, due=None)


def schedule_retry(state: ExitState, now: float, policy: ExitPolicy, blocked_for_s: float) -> tuple[ExitState, float]:
    """Count one more refusal of the pending exit and set when it is sent again; returns the
    new state and the delay in seconds (``lifecycle.exit_retry_delay``)."""
    refusals = state.refusals + 1
    delay = exit_retry_delay(refusals, policy.query_delay_s, policy.exit_retry_s, blocked_for_s)
    return replace(state, refusals=refusals, due=now + delay, retry_at=now + delay), delay


@dataclass(frozen=True)
class CloseRequest:
    """An operator's close of one symbol, answered until its position is closed or the close fails."""

    command_id: str
    command: str  # close_position, or close_all when it is part of one
    source_event_id: str
    accepted: bool = False


def answer_closes(
    closes: tuple[CloseRequest, ...], outcome: Outcome, reason: str
) -> tuple[tuple[CloseRequest, ...], tuple[Answer, ...]]:
    """Answer every waiting close: ``accepted`` once each (they keep waiting), a final outcome
    to all of them (they are done). Returns the closes still waiting and the answers."""
    if outcome is not Outcome.ACCEPTED:
        return (), tuple(Answer(c.command_id, c.command, outcome, reason) for c in closes)
    answers = tuple(Answer(c.command_id, c.command, outcome, reason) for c in closes if not c.accepted)
    return tuple(replace(c, accepted=True) for c in closes), answers
