"""The replay clock and the price walk inside one candle (pure, no I/O).

Market time runs at ``speed`` times wall time from an anchor; at speed 1 it equals the wall clock.
Inside a candle the price walks open -> first extreme -> second extreme -> close (low first for a
bullish candle, high first for a bearish one), so every high and low is visited exactly; the
step prices are ``shared.trading.walk``'s, which the backtester walks too.

A candle is cut into ``4n`` equal steps; step ``s`` is due at ``open + interval * s / 4n``:

* steps ``0 .. n-1``: the open (held for the first quarter)
* step ``n``: the first extreme, then ``n`` steps interpolated to the second extreme at ``2n``
* ``n`` steps interpolated to the close at ``3n``, then the close held until ``4n - 1``
* at ``open + interval`` the candle is final.

``n`` is 1 at high speeds and grows at low speeds so a step falls about once per wall second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from shared.trading.walk import step_due, step_price, substeps
from shared.trading.walk import walk_points as _points

from .candles import Candle

__all__ = ["MarketClock", "rebase_offset", "step_due", "step_price", "substeps", "walk_points", "wall_ms"]


def wall_ms() -> int:
    """The real clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class MarketClock:
    """Maps wall time to replayed market time: ``start + (wall - anchor) * speed``; the market
    starts at the wall time of the anchor unless ``start_ms`` names another market time."""

    def __init__(
        self, speed: float, anchor_ms: int, clock: Callable[[], int] = wall_ms, start_ms: int | None = None
    ) -> None:
        self.speed = speed
        self.anchor_ms = anchor_ms
        self.start_ms = anchor_ms if start_ms is None else start_ms
        self._clock = clock

    def now(self) -> int:
        """Current market time in epoch ms."""
        return self.start_ms + int((self._clock() - self.anchor_ms) * self.speed)

    def wall_seconds_until(self, market_ms: int) -> float:
        """Wall seconds until market time reaches ``market_ms`` (negative when already past)."""
        return (market_ms - self.now()) / self.speed / 1000


def rebase_offset(anchor_ms: int, interval_ms: int, history_open_time: int) -> int:
    """Offset added to source open times so the candle at ``history_open_time`` opens in the
    interval that contains ``anchor_ms`` (aligned to the interval)."""
    return anchor_ms // interval_ms * interval_ms - history_open_time


def walk_points(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """O, extreme 1, extreme 2, C: O->L->H->C when close >= open, else O->H->L->C."""
    return _points(candle.open, candle.high, candle.low, candle.close)
