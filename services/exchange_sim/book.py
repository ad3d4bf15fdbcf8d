"""The synthetic order book around the walk price (pure), as ``depth``, ``bookTicker`` and streams.

The book the engine sweeps (matching.py) has ``DEPTH_LEVELS`` levels one tick apart starting at
the walk price, each of ``MARKET_DEPTH_QUOTE / DEPTH_LEVELS`` quote notional. It is shown with
the bids from the walk price down and the asks from one tick above it, so the book is never
crossed; a taker BUY fills at the walk price, one tick better than the best ask shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .decimals import floor_to_step, fmt8
from .matching import DEPTH_LEVELS
from .symbols import SymbolSpec

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Book:
    """Bids (best first) and asks (best first) with the update id they belong to."""

    symbol: str
    update_id: int
    bids: list[Level]
    asks: list[Level]

    def depth(self, limit: int) -> dict[str, object]:
        """``GET /api/v3/depth`` and the ``@depth<levels>`` payload."""
        return {"lastUpdateId": self.update_id, "bids": _rows(self.bids[:limit]), "asks": _rows(self.asks[:limit])}

    def book_ticker(self) -> dict[str, object]:
        """``GET /api/v3/ticker/bookTicker`` row."""
        (bid, bid_qty), (ask, ask_qty) = self.bids[0], self.asks[0]
        return {
            "symbol": self.symbol,
            "bidPrice": fmt8(bid),
            "bidQty": fmt8(bid_qty),
            "askPrice": fmt8(ask),
            "askQty": fmt8(ask_qty),
        }

    def book_ticker_event(self) -> dict[str, object]:
        """The ``<symbol>@bookTicker`` payload."""
        (bid, bid_qty), (ask, ask_qty) = self.bids[0], self.asks[0]
        return {
            "u": self.update_id,
            "s": self.symbol,
            "b": fmt8(bid),
            "B": fmt8(bid_qty),
            "a": fmt8(ask),
            "A": fmt8(ask_qty),
        }

    def diff_event(self, before: Book | None, event_time: int) -> dict[str, object]:
        """The ``<symbol>@depth`` payload from ``before`` to this book: levels gone get quantity 0."""
        first = before.update_id + 1 if before else self.update_id
        return {
            "e": "depthUpdate",
            "E": event_time,
            "s": self.symbol,
            "U": first,
            "u": self.update_id,
            "b": _rows(_changes(before.bids if before else [], self.bids)),
            "a": _rows(_changes(before.asks if before else [], self.asks)),
        }


def _rows(levels: list[Level]) -> list[list[str]]:
    return [[fmt8(price), fmt8(qty)] for price, qty in levels]


def _changes(old: list[Level], new: list[Level]) -> list[Level]:
    now = dict(new)
    gone = [(price, Decimal(0)) for price, _ in old if price not in now]
    changed = [(price, qty) for price, qty in new if dict(old).get(price) != qty]
    return sorted(gone + changed, key=lambda level: level[0])


def build_book(spec: SymbolSpec, price: Decimal, level_quote: Decimal, update_id: int) -> Book:
    """The book around ``price``: every level holds the same base quantity."""
    tick = spec.tick_size
    size = floor_to_step(level_quote / price, spec.step_size) if price > 0 else Decimal(0)
    bids = [(price - i * tick, size) for i in range(DEPTH_LEVELS) if price - i * tick > 0]
    asks = [(price + (i + 1) * tick, size) for i in range(DEPTH_LEVELS)]
    return Book(spec.symbol, update_id, bids, asks)
