"""Entry and exit rules of the EMA-cross strategy (spot, long only).

Entry on closed candle ``i``: the short EMA crosses above the long EMA
(``ema_short[i-1] <= ema_long[i-1]`` and ``ema_short[i] > ema_long[i]``), RSI[i] is below
RSI_OVERBOUGHT, and, when enabled, ``close[i] > ema_filter[i]`` (USE_EMA_FILTER) and
``volume[i] > volume_avg[i]`` (USE_VOLUME_CONFIRMATION).

Exit signal: the short EMA crosses below the long EMA
(``ema_short[i-1] >= ema_long[i-1]`` and ``ema_short[i] < ema_long[i]``) and RSI[i] is above
RSI_OVERSOLD.

No signal at all while any enabled indicator is NaN on candle ``i`` or ``i-1`` (warm-up).
``evaluate`` serves the live service one candle at a time and explains itself;
``signal_arrays`` computes the same thing over whole arrays for the backtester.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shared.parameters import StrategyParameters
from shared.trading.indicators import IndicatorRow

if TYPE_CHECKING:
    import pandas as pd

ENTRY_CONDITIONS = ("ema_cross_up", "rsi_below_overbought", "close_above_ema_filter", "volume_above_average")
EXIT_CONDITIONS = ("ema_cross_down", "rsi_above_oversold")


@dataclass(frozen=True)
class Check:
    """One rule check: ``value`` compared with ``threshold`` on the current candle.

    For the EMA crosses ``value``/``threshold`` are the short/long EMA on the current candle and
    ``previous_value``/``previous_threshold`` the same on the previous candle.
    """

    name: str
    passed: bool
    value: float
    threshold: float
    previous_value: float | None = None
    previous_threshold: float | None = None

    def describe(self) -> str:
        """Human-readable line for a decision log, e.g. ``rsi_below_overbought: 61.2 < 75 passed``."""
        verdict = "passed" if self.passed else "failed"
        text = f"{self.name}: {self.value:.10g} vs {self.threshold:.10g}"
        if self.previous_value is not None and self.previous_threshold is not None:
            text += f" (previous {self.previous_value:.10g} vs {self.previous_threshold:.10g})"
        return f"{text} {verdict}"


@dataclass(frozen=True)
class Evaluation:
    """Outcome of the rules on one closed candle (the strategy publishes it as a ``Decision`` event).

    ``warm`` is False while an enabled indicator is still NaN (``missing`` names them); then
    ``entry`` and ``exit`` are False and ``conditions`` is empty. Disabled filters are not listed.
    """

    entry: bool
    exit: bool
    warm: bool
    conditions: tuple[Check, ...] = ()
    missing: tuple[str, ...] = ()

    @classmethod
    def warming(cls, missing: tuple[str, ...]) -> Evaluation:
        """No decision yet: ``missing`` indicators are still NaN on one of the two candles."""
        return cls(entry=False, exit=False, warm=False, missing=missing)

    @classmethod
    def of(cls, entry: Sequence[Check], exit_: Sequence[Check]) -> Evaluation:
        """Entry when every entry check passes, exit when every exit check does; all are listed."""
        return cls(
            entry=all(c.passed for c in entry),
            exit=all(c.passed for c in exit_),
            warm=True,
            conditions=(*entry, *exit_),
        )

    def condition(self, name: str) -> Check | None:
        """The condition called ``name``, or None when it was not evaluated."""
        return next((c for c in self.conditions if c.name == name), None)

    def describe(self) -> str:
        """One line per condition, prefixed by the verdict, for the decision log."""
        if not self.warm:
            return "warming up: no value yet for " + ", ".join(self.missing)
        verdict = "entry" if self.entry else "exit" if self.exit else "no signal"
        return "; ".join([verdict, *(c.describe() for c in self.conditions)])


def required_indicators(params: StrategyParameters) -> tuple[str, ...]:
    """Indicator columns that must be known (not NaN) on two candles before any signal."""
    names = ["ema_short", "ema_long", "rsi"]
    if params.USE_EMA_FILTER:
        names.append("ema_filter")
    if params.USE_VOLUME_CONFIRMATION:
        names.append("volume_avg")
    return tuple(names)


def evaluate(previous: IndicatorRow, current: IndicatorRow, params: StrategyParameters) -> Evaluation:
    """Apply the entry and exit rules to the last two closed candles (``previous`` is candle ``i-1``)."""
    missing = tuple(
        name
        for name in required_indicators(params)
        if math.isnan(getattr(previous, name)) or math.isnan(getattr(current, name))
    )
    if missing:
        return Evaluation.warming(missing)

    cross_up = Check(
        "ema_cross_up",
        previous.ema_short <= previous.ema_long and current.ema_short > current.ema_long,
        current.ema_short,
        current.ema_long,
        previous.ema_short,
        previous.ema_long,
    )
    entry = [
        cross_up,
        Check("rsi_below_overbought", current.rsi < params.RSI_OVERBOUGHT, current.rsi, params.RSI_OVERBOUGHT),
    ]
    if params.USE_EMA_FILTER:
        entry.append(
            Check("close_above_ema_filter", current.close > current.ema_filter, current.close, current.ema_filter)
        )
    if params.USE_VOLUME_CONFIRMATION:
        entry.append(
            Check("volume_above_average", current.volume > current.volume_avg, current.volume, current.volume_avg)
        )
    cross_down = Check(
        "ema_cross_down",
        previous.ema_short >= previous.ema_long and current.ema_short < current.ema_long,
        current.ema_short,
        current.ema_long,
        previous.ema_short,
        previous.ema_long,
    )
    exit_ = [
        cross_down,
        Check("rsi_above_oversold", current.rsi > params.RSI_OVERSOLD, current.rsi, params.RSI_OVERSOLD),
    ]
    return Evaluation.of(entry, exit_)


def signal_arrays(
    indicators: pd.DataFrame | Mapping[str, npt.NDArray[np.float64]],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
    params: StrategyParameters,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Entry and exit signals for every candle, as two bool arrays of the input length.

    ``indicators`` is the output of ``compute_indicators`` (a DataFrame) or any mapping of the
    same column names to float arrays. Candle 0 never signals (it has no previous candle).
    """
    ema_short = np.asarray(indicators["ema_short"], dtype=np.float64)
    ema_long = np.asarray(indicators["ema_long"], dtype=np.float64)
    rsi = np.asarray(indicators["rsi"], dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    entry = np.zeros(n, dtype=bool)
    exit_ = np.zeros(n, dtype=bool)
    if n < 2:
        return entry, exit_
    # A cross is rare (about one 1m candle in sixty): the candles where one may happen are found
    # in two comparisons over the series, and every condition is checked at those only (the
    # optimiser runs this once per trial, on columns no longer in the CPU's cache). Where both
    # EMAs are known (which ``warm`` checks, the EMAs being required), "not <=" is ">" and
    # "not <" is ">=".
    at_or_below = ema_short <= ema_long
    below = ema_short < ema_long
    up = np.flatnonzero(at_or_below[:-1] & ~at_or_below[1:]) + 1
    down = np.flatnonzero(~below[:-1] & below[1:]) + 1
    required = [np.asarray(indicators[name], dtype=np.float64) for name in required_indicators(params)]

    def warm(at: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Every required indicator known on candles ``at`` and ``at - 1``."""
        known = np.ones(len(at), dtype=bool)
        for column in required:
            known &= ~np.isnan(column[at]) & ~np.isnan(column[at - 1])
        return known

    go = warm(up) & (rsi[up] < params.RSI_OVERBOUGHT)
    if params.USE_EMA_FILTER:
        go &= close[up] > np.asarray(indicators["ema_filter"], dtype=np.float64)[up]
    if params.USE_VOLUME_CONFIRMATION:
        go &= np.asarray(volume, dtype=np.float64)[up] > np.asarray(indicators["volume_avg"], dtype=np.float64)[up]
    stop = warm(down) & (rsi[down] > params.RSI_OVERSOLD)
    entry[up[go]] = True
    exit_[down[stop]] = True
    return entry, exit_
