"""Indicators updated in O(1) per closed candle, seeded exactly as their vectorised pandas-ta form.

The live strategy service keeps one ``IndicatorState`` per symbol and feeds it each closed
candle once, instead of recomputing pandas-ta over its whole window. Each class reproduces the
arithmetic of the pandas-ta call ``shared.trading.indicators.vectorised`` makes (same seed,
same recurrence, same order of operations where it matters), so both agree within rounding
(the tests hold them to 1e-9 relative on every shared candle file). A state rebuilt from the
window's candles after a restart reaches the same values once the seed has faded (EMA/RSI/ATR)
or exactly (SMA, highest, lowest).

Each ``update`` returns the value after the candle, NaN during the warm-up (see ``first_index``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from shared.trading.vocabulary import IndicatorKind

NAN = math.nan


def first_index(kind: IndicatorKind, period: int) -> int:
    """Index of the first candle with a value: RSI needs ``period`` price changes, the others ``period`` candles."""
    return period if kind is IndicatorKind.RSI else period - 1


class _Recurrence:
    """pandas' ``ewm(alpha, adjust=False).mean()`` step: ``((1-a)*avg + a*x) / ((1-a) + a)``."""

    __slots__ = ("keep", "norm", "take", "value")

    def __init__(self, alpha: float) -> None:
        self.keep, self.take = 1.0 - alpha, alpha
        self.norm = self.keep + self.take
        self.value = NAN

    def step(self, x: float) -> float:
        self.value = x if math.isnan(self.value) else (self.keep * self.value + self.take * x) / self.norm
        return self.value


class Ema:
    """EMA(n) with pandas-ta's seed: the mean of the first n values sits at index n-1."""

    __slots__ = ("avg", "count", "period", "seed")

    def __init__(self, period: int, alpha: float | None = None) -> None:
        self.period, self.count, self.seed = period, 0, 0.0
        self.avg = _Recurrence(2.0 / (period + 1.0) if alpha is None else alpha)

    def update(self, x: float) -> float:
        self.count += 1
        if self.count < self.period:
            self.seed += x
            return NAN
        if self.count == self.period:
            return self.avg.step((self.seed + x) / self.period)
        return self.avg.step(x)


class Sma:
    """Simple average of the last n values: a compensated running sum, re-added exactly every n
    updates (O(1) amortised) so rounding never accumulates over a long run."""

    __slots__ = ("carry", "period", "ring", "since", "total")

    def __init__(self, period: int) -> None:
        self.period = period
        self.ring: deque[float] = deque(maxlen=period)
        self.total = self.carry = 0.0
        self.since = 0

    def _add(self, x: float) -> None:
        # Neumaier's compensated summation.
        t = self.total + x
        self.carry += (self.total - t) + x if abs(self.total) >= abs(x) else (x - t) + self.total
        self.total = t

    def update(self, x: float) -> float:
        removed = self.ring[0] if len(self.ring) == self.period else 0.0
        if removed:
            self._add(-removed)
        self.ring.append(x)
        self._add(x)
        self.since += 1
        # Also exactly when the sum cancelled down to far below what left it (a run of zero
        # volumes): the residue of the subtraction would otherwise be reported as the average.
        if self.since >= self.period or abs(self.total + self.carry) < 1e-6 * abs(removed):
            self.total, self.carry, self.since = math.fsum(self.ring), 0.0, 0
        if len(self.ring) < self.period:
            return NAN
        return (self.total + self.carry) / self.period


class Rsi:
    """Wilder's RSI(n) as pandas-ta computes it: Wilder averages (``ewm(alpha=1/n, adjust=False)``)
    of the gains and losses from the first price change on, reported from the n-th change."""

    __slots__ = ("count", "gain", "loss", "period", "previous")

    def __init__(self, period: int) -> None:
        self.period, self.count, self.previous = period, 0, NAN
        self.gain, self.loss = _Recurrence(1.0 / period), _Recurrence(1.0 / period)

    def update(self, close: float) -> float:
        previous, self.previous = self.previous, close
        self.count += 1
        if math.isnan(previous):
            return NAN
        change = close - previous
        gain = self.gain.step(change if change > 0 else 0.0)
        loss = abs(self.loss.step(change if change < 0 else 0.0))
        if self.count <= self.period:
            return NAN
        total = gain + loss
        return NAN if total == 0 else 100.0 * gain / total


class Atr:
    """Wilder's ATR(n), seeded (as pandas-ta with ``presma``) with the mean of the first n true ranges;
    the first candle's true range is its high - low."""

    __slots__ = ("average", "previous_close")

    def __init__(self, period: int) -> None:
        self.average = Ema(period, alpha=1.0 / period)
        self.previous_close = NAN

    def update(self, high: float, low: float, close: float) -> float:
        previous, self.previous_close = self.previous_close, close
        true_range = abs(high - low)
        if not math.isnan(previous):
            true_range = max(true_range, abs(high - previous), abs(previous - low))
        return self.average.update(true_range)


class Extreme:
    """Highest (or lowest) value of the last n candles: a monotonic queue, O(1) amortised."""

    __slots__ = ("count", "highest", "period", "queue")

    def __init__(self, period: int, *, highest: bool) -> None:
        self.period, self.highest, self.count = period, highest, 0
        self.queue: deque[tuple[int, float]] = deque()

    def update(self, x: float) -> float:
        queue = self.queue
        while queue and (queue[-1][1] <= x if self.highest else queue[-1][1] >= x):
            queue.pop()
        queue.append((self.count, x))
        if queue[0][0] <= self.count - self.period:
            queue.popleft()
        self.count += 1
        return queue[0][1] if self.count >= self.period else NAN


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator a strategy needs: its column ``name``, ``kind``, ``period`` (candles) and the
    candle column it reads (``close`` or ``volume``; ATR and the channels read high/low/close)."""

    name: str
    kind: IndicatorKind
    period: int
    source: str = "close"

    @property
    def first_index(self) -> int:
        return first_index(self.kind, self.period)


def _updater(spec: IndicatorSpec):  # type: ignore[no-untyped-def]
    kind = spec.kind
    if kind is IndicatorKind.EMA:
        ema = Ema(spec.period)
        return lambda c: ema.update(c[spec.source])
    if kind is IndicatorKind.SMA:
        sma = Sma(spec.period)
        return lambda c: sma.update(c[spec.source])
    if kind is IndicatorKind.RSI:
        rsi = Rsi(spec.period)
        return lambda c: rsi.update(c[spec.source])
    if kind is IndicatorKind.ATR:
        atr = Atr(spec.period)
        return lambda c: atr.update(c["high"], c["low"], c["close"])
    extreme = Extreme(spec.period, highest=kind is IndicatorKind.HIGHEST)
    column = "high" if kind is IndicatorKind.HIGHEST else "low"
    return lambda c: extreme.update(c[column])


class IndicatorState:
    """The incremental state of a list of indicators; ``update`` takes one closed candle
    (a mapping with ``open, high, low, close, volume`` floats) and returns every value after it."""

    def __init__(self, specs: tuple[IndicatorSpec, ...]) -> None:
        self.specs = specs
        self._updaters = [(spec.name, _updater(spec)) for spec in specs]

    def update(self, candle: dict[str, float]) -> dict[str, float]:
        return {name: update(candle) for name, update in self._updaters}
