"""The rolling 24 h window behind the miniTicker and ticker/24hr statistics (pure)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from .candles import KlineValues


class RollingWindow:
    """Closed candles of the last 24 h with running sums and monotonic max/min queues."""

    def __init__(self) -> None:
        self.items: deque[KlineValues] = deque()
        self._max: deque[KlineValues] = deque()
        self._min: deque[KlineValues] = deque()
        self.volume = Decimal(0)
        self.quote_volume = Decimal(0)

    def add(self, item: KlineValues) -> None:
        self.items.append(item)
        self.volume += item.volume
        self.quote_volume += item.quote_volume
        while self._max and self._max[-1].high <= item.high:
            self._max.pop()
        self._max.append(item)
        while self._min and self._min[-1].low >= item.low:
            self._min.pop()
        self._min.append(item)

    def expire(self, cutoff: int) -> None:
        """Drop candles that opened at or before ``cutoff``."""
        while self.items and self.items[0].open_time <= cutoff:
            old = self.items.popleft()
            self.volume -= old.volume
            self.quote_volume -= old.quote_volume
            if self._max and self._max[0] is old:
                self._max.popleft()
            if self._min and self._min[0] is old:
                self._min.popleft()

    def summary(self, forming: KlineValues | None) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
        """(open, high, low, volume, quote volume) including the forming candle."""
        opener = self.items[0] if self.items else forming
        if opener is None:
            return None
        highs = [self._max[0].high] if self._max else []
        lows = [self._min[0].low] if self._min else []
        volume, quote = self.volume, self.quote_volume
        if forming is not None:
            highs.append(forming.high)
            lows.append(forming.low)
            volume, quote = volume + forming.volume, quote + forming.quote_volume
        return opener.open, max(highs), min(lows), volume, quote
