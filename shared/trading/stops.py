"""Stop-loss levels that depend on volatility or move with the price: a stop k x ATR below the
entry, a trailing stop that ratchets up behind the closes (a fraction or k x ATR below them,
optionally only once a close is far enough above the entry), and a move to break-even once the
price has risen far enough. Pure functions of market values (closed candles, never a clock),
on the symbol's tick grid, so the executor and the backtester can share them.

Every level is rounded UP to the tick (towards the price, as ``protection`` does for the
stop-loss), and a moved stop never goes down: ``moved_stop`` returns the old stop when no rule
raises it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from shared.parameters import StrategyParameters
from shared.trading.protection import _to_tick, protection_levels
from shared.trading.vocabulary import StopMode

ONE = Decimal(1)
ZERO = Decimal(0)


def atr_stop(entry_price: Decimal, atr: Decimal, multiplier: Decimal, tick_size: Decimal) -> Decimal:
    """entry - multiplier x ATR, rounded up to the tick; a level at or below zero, or not below
    the entry, is refused (the ATR is too large, or zero, for a stop)."""
    if entry_price <= ZERO or atr <= ZERO or multiplier <= ZERO:
        raise ValueError(f"entry, ATR and multiplier must be positive, got {entry_price}, {atr}, {multiplier}")
    level = entry_price - multiplier * atr
    if level <= ZERO:
        raise ValueError(f"{multiplier} x ATR {atr} reaches below zero from the entry {entry_price}")
    stop = _to_tick(level, tick_size, ROUND_CEILING)
    if stop >= entry_price:
        stop = entry_price - tick_size if tick_size > ZERO else level
    return stop


def trailed_stop(stop: Decimal, close: Decimal, trailing: Decimal, tick_size: Decimal) -> Decimal:
    """The stop raised to ``trailing`` (a fraction) below a close (the highest one since the entry
    gives the same stop: the level only ever rises)."""
    if not ZERO < trailing < ONE:
        raise ValueError(f"trailing distance must be within (0, 1), got {trailing}")
    return max(stop, _to_tick(close * (ONE - trailing), tick_size, ROUND_CEILING))


def atr_trailed_stop(stop: Decimal, close: Decimal, atr: Decimal, multiplier: Decimal, tick_size: Decimal) -> Decimal:
    """The stop raised to ``multiplier`` x ``atr`` (that candle's ATR) below a candle's close."""
    if atr <= ZERO or multiplier <= ZERO:
        raise ValueError(f"ATR and multiplier must be positive, got {atr}, {multiplier}")
    level = close - multiplier * atr
    if level <= ZERO:
        return stop
    return max(stop, _to_tick(level, tick_size, ROUND_CEILING))


def break_even_stop(
    stop: Decimal, entry_price: Decimal, highest_close: Decimal, at: Decimal, tick_size: Decimal
) -> Decimal:
    """The stop raised to the entry price once a close reached ``at`` (a fraction) above it."""
    if at <= ZERO:
        raise ValueError(f"break-even distance must be positive, got {at}")
    if highest_close < entry_price * (ONE + at):
        return stop
    return max(stop, _to_tick(entry_price, tick_size, ROUND_CEILING))


@dataclass(frozen=True)
class StopRules:
    """How a position's stop is set and moved (None: the rule is off).

    ``trailing`` (a fraction) and ``atr_trailing`` (a multiple of the candle's ATR) both trail
    behind the closes, the higher level wins; ``activation`` (a fraction) holds both back until a
    close is that far above the entry."""

    mode: StopMode = StopMode.PERCENT
    atr_multiplier: Decimal = Decimal(2)
    trailing: Decimal | None = None
    break_even_at: Decimal | None = None
    atr_trailing: Decimal | None = None
    activation: Decimal | None = None
    atr_period: int = 14

    @property
    def moves(self) -> bool:
        """True when a closed candle can move the stop."""
        return self.trailing is not None or self.break_even_at is not None or self.atr_trailing is not None

    @property
    def needs_atr(self) -> bool:
        """True when a candle's ATR is part of a level (the first stop or the trailing one)."""
        return self.mode is StopMode.ATR or self.atr_trailing is not None


def trailing_active(entry_price: Decimal, close: Decimal, rules: StopRules) -> bool:
    """Whether a close lets the trailing rules move the stop: always without an activation offset,
    else once the close is ``activation`` above the entry (each close is judged by itself: a
    lower close after it would not raise a trailing stop anyway)."""
    return rules.activation is None or close >= entry_price * (ONE + rules.activation)


def moved_stop(
    stop: Decimal,
    entry_price: Decimal,
    close: Decimal,
    rules: StopRules,
    tick_size: Decimal,
    atr: Decimal | None = None,
) -> Decimal:
    """The stop after a closed candle of close ``close`` (and ATR ``atr``, None when unknown: the
    ATR trailing rule then waits for the next candle): the highest of the current stop, the
    break-even level (once reached) and the trailing levels (once active). Never lower than ``stop``.

    Feeding a candle again gives the same stop (every level is a function of that candle, and
    the stop keeps the highest), and for the percentage rules feeding each close equals feeding
    the highest close since the entry: their levels rise with the close."""
    moved = stop
    if rules.break_even_at is not None:
        moved = break_even_stop(moved, entry_price, close, rules.break_even_at, tick_size)
    if not trailing_active(entry_price, close, rules):
        return moved
    if rules.trailing is not None:
        moved = trailed_stop(moved, close, rules.trailing, tick_size)
    if rules.atr_trailing is not None and atr is not None and atr > ZERO:
        moved = atr_trailed_stop(moved, close, atr, rules.atr_trailing, tick_size)
    return moved


def stop_rules(params: StrategyParameters) -> StopRules:
    """The stop rules of a parameter set (a distance of 0 turns its rule off)."""
    return StopRules(
        mode=params.STOP_MODE,
        atr_multiplier=params.ATR_STOP_MULTIPLIER,
        trailing=params.TRAILING_STOP_PERCENTAGE or None,
        break_even_at=params.BREAK_EVEN_AT_PERCENTAGE or None,
        atr_trailing=params.TRAILING_STOP_ATR_MULTIPLIER or None,
        activation=params.TRAILING_ACTIVATION_PERCENTAGE or None,
        atr_period=params.STOP_ATR_PERIOD,
    )


# -- the ATR of a candle, the same number wherever it is computed ---------------------------------

# The ATR a stop uses is Wilder's ATR(n) over exactly the last ATR_WINDOW_PERIODS x n candles up to
# and including that candle (seeded with the mean of the window's first n true ranges, the first
# one high - low): a function of those candles alone. The backtester (which holds the whole
# history) and the executor (which reads the symbol's kline stream) thus compute the same float,
# bit for bit, from the same candles, whatever history either began with. Four periods leave the
# seed about 4 % of the weight at n = 14.
ATR_WINDOW_PERIODS = 4


def atr_window(period: int) -> int:
    """Candles a stop's ATR(``period``) is computed from."""
    return ATR_WINDOW_PERIODS * period


def true_range(high: float, low: float, previous_close: float | None) -> float:
    """A candle's true range (its high - low when it is the first one)."""
    span = abs(high - low)
    if previous_close is None:
        return span
    return max(span, abs(high - previous_close), abs(previous_close - low))


def atr_of_ranges(ranges: Sequence[float], period: int) -> Decimal | None:
    """Wilder's ATR(``period``) after the true ranges of one ATR window (``atr_window(period)`` of
    them, the first one its candle's high - low), as ``incremental.Atr`` computes it step for step
    (the same float); None for another count or an ATR that is not positive."""
    if len(ranges) != atr_window(period):
        return None
    alpha = 1.0 / period
    keep = 1.0 - alpha
    norm = keep + alpha
    value = 0.0
    for x in ranges[: period - 1]:  # one addition at a time, as Ema's seed (sum() compensates)
        value += x
    value = (value + ranges[period - 1]) / period
    for x in ranges[period:]:
        value = (keep * value + alpha * x) / norm
    if math.isnan(value) or value <= 0:
        return None
    # The shortest text that reads back as the same float, as the backtester writes prices.
    return Decimal(repr(value))


def window_atr(
    highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], period: int, end: int | None = None
) -> Decimal | None:
    """ATR(``period``) at candle ``end - 1`` (the last given by default; oldest first), from the
    ``atr_window(period)`` candles up to it; None when there are fewer or the ATR is not positive."""
    size = atr_window(period)
    stop = len(closes) if end is None else end
    start = stop - size
    if start < 0 or stop > min(len(highs), len(lows), len(closes)):
        return None
    ranges = [true_range(highs[start], lows[start], None)]
    ranges += [true_range(highs[i], lows[i], closes[i - 1]) for i in range(start + 1, stop)]
    return atr_of_ranges(ranges, period)


def initial_levels(
    entry_price: Decimal, params: StrategyParameters, tick_size: Decimal, atr: Decimal | None
) -> tuple[Decimal, Decimal]:
    """``(stop_loss, take_profit)`` at the entry: the percentage levels, the stop replaced by
    ``atr_stop`` in the atr mode (``atr``: the entry candle's ``window_atr``, required there)."""
    stop_loss, take_profit = protection_levels(entry_price, params, tick_size)
    if params.STOP_MODE is StopMode.ATR:
        if atr is None:
            raise ValueError(f"STOP_MODE=atr needs the entry candle's ATR({params.STOP_ATR_PERIOD})")
        stop_loss = atr_stop(entry_price, atr, params.ATR_STOP_MULTIPLIER, tick_size)
    return stop_loss, take_profit
