"""A bounded window of closed candles per symbol, kept in open-time order without duplicates."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from shared.events import Kline


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
            (
                kline.open_time_ms,
                float(kline.open),
                float(kline.high),
                float(kline.low),
                float(kline.close),
                float(kline.volume),
            )
        )
        return True

    def add_row(self, row: tuple[int, float, float, float, float, float]) -> bool:
        """``add`` of a candle already read as ``(open_time, open, high, low, close, volume)``."""
        if self._rows and row[0] <= self._rows[-1][0]:
            return False
        self._rows.append(row)
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
