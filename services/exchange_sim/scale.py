"""Many symbols from a few candle files: ``EXCHANGE_SIM_SCALE_SYMBOLS`` re-based copies.

Symbol ``i`` (0-based) replays file ``i mod files`` under the name ``<BASE><i><QUOTE>`` (the
index zero-padded to at least three digits: ``BTC000USDT``, ``ETH001USDT``, ...) with every
price multiplied by ``(1000 + i) / 1000 / 10**(i mod 4)``, rounded half-even to at most 8
decimals: every symbol has its own price level and step size, deterministically, and a
market-wide stream carries as many distinct prices as symbols. Volumes, trade counts and trade
ids are those of the source file. The copies share the source's parsed rows, so 500 symbols
cost little more memory than the files themselves.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from .candles import Candle, Series
from .symbols import split_symbol

MAX_DECIMALS = 8


def scale_of(index: int) -> Decimal:
    """The price factor of symbol ``index``."""
    return Decimal(1000 + index) / 1000 / Decimal(10) ** (index % 4)


def scaled_name(source_symbol: str, index: int, count: int) -> str:
    """``BTCUSDT``, 7, 500 -> ``BTC007USDT``."""
    base, quote = split_symbol(source_symbol)
    return f"{base}{index:0{max(3, len(str(count - 1)))}d}{quote}"


def scaled_symbols(source_symbols: list[str], count: int) -> list[str]:
    """The names of the ``count`` symbols served from files of ``source_symbols`` (in file order)."""
    return [scaled_name(source_symbols[i % len(source_symbols)], i, count) for i in range(count)]


class ScaledSeries(Series):
    """A source series under another name with its prices multiplied by ``scale``."""

    def __init__(self, source: Series, symbol: str, scale: Decimal) -> None:
        # The source's rows and per-candle arrays are shared, not parsed again.
        self.path, self.symbol, self.interval = source.path, symbol, source.interval
        self.interval_ms, self._rows = source.interval_ms, source._rows
        self.open_times, self.trades, self.first_ids = source.open_times, source.trades, source.first_ids
        self.scale = scale
        exponent = scale.normalize().as_tuple().exponent
        added = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        self.price_decimals = min(MAX_DECIMALS, source.price_decimals + added)
        self._quantum = Decimal(1).scaleb(-self.price_decimals)
        self.first_price = self.candle(0).open

    def _price(self, value: Decimal) -> Decimal:
        return (value * self.scale).quantize(self._quantum, rounding=ROUND_HALF_EVEN)

    def candle(self, index: int) -> Candle:
        c = Series.candle(self, index)
        return Candle(
            c.open_time, self._price(c.open), self._price(c.high), self._price(c.low), self._price(c.close), c.volume
        )


def scale_series(sources: list[Series], count: int) -> list[Series]:
    """``count`` scaled copies of ``sources`` in turn (``count`` 0: the sources themselves)."""
    if count == 0:
        return sources
    names = scaled_symbols([s.symbol for s in sources], count)
    return [ScaledSeries(sources[i % len(sources)], names[i], scale_of(i)) for i in range(count)]
