"""What the executor keeps in memory about one owned symbol, between its events.

The decision core's parts of it are immutable values (``ExitState``, ``CloseRequest``,
``MarketView``, ``EntryTimes``) replaced after each decision; the rest is the shell's: the
ledger position as last read, the symbol's filters, throttles and the settling timer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from services.executor.core.state import CloseRequest, ExitState
from services.executor.core.ticks import EntryTimes, MarketView
from services.executor.exchange import SymbolInfo
from shared.store.models import Position
from shared.trading.vocabulary import Guard


@dataclass
class SymbolBook:
    """One owned symbol's state in this replica."""

    symbol: str
    position: Position | None = None
    info: SymbolInfo | None = None
    market: MarketView = field(default_factory=MarketView)
    entry: EntryTimes = field(default_factory=EntryTimes)
    exit: ExitState = field(default_factory=ExitState)
    closes: tuple[CloseRequest, ...] = ()
    settle_due: float | None = None  # monotonic time the unsettled orders are queried again
    last_settle: float = 0.0
    alerted: dict[str, float] = field(default_factory=dict)  # alert code -> monotonic time last sent
    # Statuses of the active position's OCO legs that may rest on the exchange (or be about to).
    legs: tuple[str, ...] = ()
    stop_resting: bool = False  # the OCO's stop-loss leg rests on the exchange
    stop_leg: str | None = None  # the client id of that leg (the OCO's current generation)
    # A take-profit leg may rest: False once a moved stop replaced the OCO by a single stop order
    # (the bot then watches the take-profit on ticks, the exchange holds the stop).
    take_profit_resting: bool = False
    # (stop leg id, its stop price) as placed or as the exchange told: compared with the ledger's
    # stop on each tick, without a request, to move the OCO when the stop moved.
    resting_stop: tuple[str, Decimal] | None = None
    follow_after: float = 0.0  # monotonic time before which a failed replacement is not tried again
    protect_refused: bool = False  # placing the OCO was refused: the bot watches the levels
    # Held while one event of the symbol is applied or its periodic reconciliation runs (in
    # its own task): the two never interleave on one book.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def guarded(self) -> bool:
        """The exchange holds the position's stop-loss: ticks do not sell it. A take-profit leg
        that filled in part expired the stop leg (one cancels the other): the bot watches the rest."""
        return self.stop_resting

    @property
    def protection(self) -> Guard | None:
        """Who watches the active position's levels (None when flat or still opening)."""
        if self.position is None or self.position.status not in ("OPEN", "CLOSING"):
            return None
        if not self.guarded:
            return Guard.BOT
        return Guard.EXCHANGE if self.take_profit_resting else Guard.EXCHANGE_STOP

    def settle_later(self, due: float) -> None:
        """Query the unsettled orders again at ``due`` (monotonic), or earlier if already due."""
        self.settle_due = due if self.settle_due is None else min(self.settle_due, due)


def symbol_of(stream: str) -> str:
    """The symbol at the end of a per-symbol stream name."""
    return stream.rsplit(":", 1)[-1]
