"""The price walk inside one candle, shared by the simulator and the backtester (pure).

The simulator replays a candle as ``4n`` steps (``n`` = ``substeps``): the open held for the
first quarter, the first extreme, ``n`` steps interpolated to the second extreme, ``n`` to the
close, the close held; then the candle's final step, at the close again. The first extreme is
the low for a candle closing at or above its open, the high otherwise. A resting order is
matched against every step, so the backtester walks the same prices to fill a limit entry.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

Points = tuple[Decimal, Decimal, Decimal, Decimal]


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step`` (half up); used for interpolated walk prices."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


def substeps(interval_ms: int, speed: float) -> int:
    """Steps per walk segment: 1 when a quarter candle lasts under 2 wall seconds, else about
    one per wall second."""
    return max(1, int(interval_ms / 4 / speed / 1000))


def walk_points(open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Points:
    """O, extreme 1, extreme 2, C: O->L->H->C when close >= open, else O->H->L->C."""
    if close >= open_:
        return open_, low, high, close
    return open_, high, low, close


def step_price(points: Points, step: int, n: int, tick: Decimal) -> Decimal:
    """Price at walk step ``step`` (0 .. 4n-1); interpolated prices are rounded to ``tick``."""
    open_, first, second, close = points
    if step < n:
        return open_
    if step <= 2 * n:
        return _between(first, second, step - n, n, tick)
    if step <= 3 * n:
        return _between(second, close, step - 2 * n, n, tick)
    return close


def candle_steps(points: Points, n: int, tick: Decimal) -> list[Decimal]:
    """Every price a resting order meets in the candle: the ``4n`` steps, then its final step
    (the close once more, when the candle ends)."""
    return [step_price(points, step, n, tick) for step in range(4 * n)] + [points[3]]


def step_due(open_time: int, interval_ms: int, step: int, n: int) -> int:
    """Market time at which walk step ``step`` happens (``step == 4n`` is the candle's end)."""
    return open_time + interval_ms * step // (4 * n)


def _between(start: Decimal, end: Decimal, done: int, of: int, tick: Decimal) -> Decimal:
    if done == 0:
        return start
    if done == of:
        return end
    return round_to_step(start + (end - start) * done / of, tick)
