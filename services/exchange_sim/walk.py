"""The replay clock and the price walk inside one candle (pure, no I/O).

Market time runs at ``speed`` times wall time from an anchor; at speed 1 it equals the wall clock.
Inside a candle the price walks open -> first extreme -> second extreme -> close (low first for a
bullish candle, high first for a bearish one), so every high and low is visited exactly.

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

from .candles import Candle
from .decimals import round_to_step


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


def substeps(interval_ms: int, speed: float) -> int:
    """Steps per walk segment: 1 when a quarter candle lasts under 2 wall seconds, else about
    one per wall second."""
    return max(1, int(interval_ms / 4 / speed / 1000))


def walk_points(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """O, extreme 1, extreme 2, C: O->L->H->C when close >= open, else O->H->L->C."""
    if candle.close >= candle.open:
        return candle.open, candle.low, candle.high, candle.close
    return candle.open, candle.high, candle.low, candle.close


def step_price(points: tuple[Decimal, Decimal, Decimal, Decimal], step: int, n: int, tick: Decimal) -> Decimal:
    """Price at walk step ``step`` (0 .. 4n-1); interpolated prices are rounded to ``tick``."""
    open_, first, second, close = points
    if step < n:
        return open_
    if step <= 2 * n:
        return _between(first, second, step - n, n, tick)
    if step <= 3 * n:
        return _between(second, close, step - 2 * n, n, tick)
    return close


def _between(start: Decimal, end: Decimal, done: int, of: int, tick: Decimal) -> Decimal:
    if done == 0:
        return start
    if done == of:
        return end
    return round_to_step(start + (end - start) * done / of, tick)


def step_due(open_time: int, interval_ms: int, step: int, n: int) -> int:
    """Market time at which walk step ``step`` happens (``step == 4n`` is the candle's end)."""
    return open_time + interval_ms * step // (4 * n)
