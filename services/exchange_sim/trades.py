"""The public trades of the replayed market: one trade per walk step (pure).

Each walk step that moves the market is one trade of the candle's volume / (4n) at the step's
price; its id is the step's sequence number (increasing, with a gap at each candle's close
event), its time the step's market time. ``m`` (buyer is maker) is true when the step moved the
price down. Every trade is also its own aggregate trade (``a = f = l``). The last
``TAPE_LENGTH`` trades per symbol are kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .decimals import fmt8, q8

if TYPE_CHECKING:
    from .market import Tick

TAPE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class WalkTrade:
    trade_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_maker: bool

    def rest_row(self) -> dict[str, object]:
        """A ``GET /api/v3/trades`` / ``historicalTrades`` row."""
        return {
            "id": self.trade_id,
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "quoteQty": fmt8(q8(self.price * self.qty)),
            "time": self.time,
            "isBuyerMaker": self.buyer_maker,
            "isBestMatch": True,
        }

    def agg_row(self) -> dict[str, object]:
        """A ``GET /api/v3/aggTrades`` row."""
        return {
            "a": self.trade_id,
            "p": fmt8(self.price),
            "q": fmt8(self.qty),
            "f": self.trade_id,
            "l": self.trade_id,
            "T": self.time,
            "m": self.buyer_maker,
            "M": True,
        }

    def trade_event(self, symbol: str) -> dict[str, object]:
        """The ``<symbol>@trade`` payload."""
        return {
            "e": "trade",
            "E": self.time,
            "s": symbol,
            "t": self.trade_id,
            "p": fmt8(self.price),
            "q": fmt8(self.qty),
            "T": self.time,
            "m": self.buyer_maker,
            "M": True,
        }

    def agg_event(self, symbol: str) -> dict[str, object]:
        """The ``<symbol>@aggTrade`` payload."""
        return {"e": "aggTrade", "E": self.time, "s": symbol, **self.agg_row()}


def trade_of(tick: Tick) -> WalkTrade | None:
    """The trade of a walk step (None for a step without one, such as a candle's close event)."""
    if tick.trade_qty <= 0:
        return None
    return WalkTrade(tick.sequence, tick.price, tick.trade_qty, tick.market_time, tick.buyer_maker)


class Tape:
    """The most recent walk trades of one symbol, oldest first."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.trades: deque[WalkTrade] = deque(maxlen=TAPE_LENGTH)

    def record(self, tick: Tick) -> None:
        """Add the trade of a walk step, if it has one."""
        trade = trade_of(tick)
        if trade is not None:
            self.trades.append(trade)

    def latest(self) -> WalkTrade | None:
        return self.trades[-1] if self.trades else None

    def select(
        self, limit: int, from_id: int | None = None, start: int | None = None, end: int | None = None
    ) -> list[WalkTrade]:
        """Binance paging: from ``from_id`` or ``start`` oldest first, otherwise the newest ``limit``."""
        chosen = [
            t
            for t in self.trades
            if (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        return chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
