"""The rows a strategy evaluates live: each closed candle with its indicator values, kept up to date incrementally."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from shared.trading.incremental import IndicatorSpec, IndicatorState
from shared.trading.strategies.base import Row


class IndicatorTrack:
    """A symbol's indicator rows, updated once per closed candle (O(1) each), the last ``size`` kept.

    The live service keeps one per symbol over its candle window, and builds a new one from the
    window's candles when the indicators the strategy asks for change (a parameter version with
    other periods) and after a restart.
    """

    def __init__(self, specs: tuple[IndicatorSpec, ...], size: int) -> None:
        self.specs = specs
        self.state = IndicatorState(specs)
        self.rows: deque[Row] = deque(maxlen=size)

    @classmethod
    def over(
        cls,
        candles: Iterable[tuple[int, float, float, float, float, float]],
        specs: tuple[IndicatorSpec, ...],
        size: int,
    ) -> IndicatorTrack:
        """A track fed ``candles`` (``(open_time, open, high, low, close, volume)``, oldest first)."""
        track = cls(specs, size)
        for candle in candles:
            track.add(*candle)
        return track

    def add(self, open_time: int, open_: float, high: float, low: float, close: float, volume: float) -> Row:
        values = self.state.update({"open": open_, "high": high, "low": low, "close": close, "volume": volume})
        row = Row(open_time, open_, high, low, close, volume, values)
        self.rows.append(row)
        return row

    def pair(self, open_time: int) -> tuple[Row, Row] | None:
        """``(previous, current)`` rows of the candle opened at ``open_time``; None when it left the
        window (or has no previous)."""
        for position in range(len(self.rows) - 1, 0, -1):
            row = self.rows[position]
            if row.open_time == open_time:
                return self.rows[position - 1], row
            if row.open_time < open_time:
                return None
        return None
