"""A bounded window of closed candles per symbol, kept in open-time order without duplicates, and
the strategy's incremental indicators over it."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from shared.events import Kline
from shared.trading.incremental import IndicatorSpec, IndicatorState
from shared.trading.strategies import Row


class CandleWindow:
    """The last ``size`` closed candles of one symbol."""

    def __init__(self, size: int) -> None:
        self._rows: deque[tuple[int, float, float, float, float, float]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_open_time(self) -> int | None:
        return self._rows[-1][0] if self._rows else None

    def add(self, kline: Kline) -> bool:
        """Append a closed candle; False (ignored) when it is not newer than the last one."""
        if self._rows and kline.open_time_ms <= self._rows[-1][0]:
            return False
        self._rows.append(
            (kline.open_time_ms, float(kline.open), float(kline.high), float(kline.low), float(kline.close), float(kline.volume))
        )
        return True

    def candles(self) -> list[tuple[int, float, float, float, float, float]]:
        """``(open_time, open, high, low, close, volume)`` of every candle, oldest first."""
        return list(self._rows)

    @property
    def last(self) -> tuple[int, float, float, float, float, float]:
        return self._rows[-1]

    def frame(self) -> pd.DataFrame:
        """The window as a DataFrame with ``open_time`` (ms) and float64 OHLCV columns."""
        array = np.array(self._rows, dtype=np.float64).reshape(-1, 6)
        frame = pd.DataFrame(array, columns=["open_time", "open", "high", "low", "close", "volume"])
        frame["open_time"] = frame["open_time"].astype(np.int64)
        return frame


class IndicatorTrack:
    """A symbol's indicator rows, updated once per closed candle that enters its window (O(1) each).

    Rebuilt from the window's candles when the indicators the strategy asks for change (a new
    parameter version with other periods) and after a restart (a new track over the rebuilt
    window); the rows cover the same candles as the window.
    """

    def __init__(self, specs: tuple[IndicatorSpec, ...], size: int) -> None:
        self.specs = specs
        self.state = IndicatorState(specs)
        self.rows: deque[Row] = deque(maxlen=size)

    @classmethod
    def over(cls, window: CandleWindow, specs: tuple[IndicatorSpec, ...], size: int) -> IndicatorTrack:
        track = cls(specs, size)
        for candle in window.candles():
            track.add(*candle)
        return track

    def add(self, open_time: int, open_: float, high: float, low: float, close: float, volume: float) -> Row:
        values = self.state.update({"open": open_, "high": high, "low": low, "close": close, "volume": volume})
        row = Row(open_time, open_, high, low, close, volume, values)
        self.rows.append(row)
        return row

    def pair(self, open_time: int) -> tuple[Row, Row] | None:
        """``(previous, current)`` rows of the candle opened at ``open_time``, None when it left (or has no previous)."""
        for position in range(len(self.rows) - 1, 0, -1):
            row = self.rows[position]
            if row.open_time == open_time:
                return self.rows[position - 1], row
            if row.open_time < open_time:
                return None
        return None
