"""What the executor keeps in memory about one owned symbol, between its events.

The decision core's parts of it are immutable values (``ExitState``, ``CloseRequest``,
``MarketView``, ``EntryTimes``) replaced after each decision; the rest is the shell's: the
ledger position as last read, the symbol's filters, throttles and the settling timer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.executor.core.state import CloseRequest, ExitState
from services.executor.core.ticks import EntryTimes, MarketView
from services.executor.exchange import SymbolInfo
from shared.store.models import Position


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

    def settle_later(self, due: float) -> None:
        """Query the unsettled orders again at ``due`` (monotonic), or earlier if already due."""
        self.settle_due = due if self.settle_due is None else min(self.settle_due, due)


def symbol_of(stream: str) -> str:
    """The symbol at the end of a per-symbol stream name."""
    return stream.rsplit(":", 1)[-1]
