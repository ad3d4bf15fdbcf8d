"""Indicators of the strategy, computed with pandas-ta's own implementation.

pandas-ta hands the work to TA-Lib whenever TA-Lib is importable; every call here passes
``talib=False`` so the results never depend on what happens to be installed (and TA-Lib can
serve as an independent check in the tests).

Warm-up: a value is NaN until its indicator has seen a full period, i.e. EMA(n) from candle
index ``n - 1``, RSI(n) from index ``n`` (n price changes), the volume average(n) from ``n - 1``
and ATR(14) from index 13. pandas-ta alone would report an RSI from index 1; it is masked so
the RSI warm-up matches ``StrategyParameters.warmup_candles()``.

EMAs are seeded with the simple average of their first ``n`` closes, so a value depends on
where the series starts: the live service and the backtester must start from the same candle
(or from far enough back, about 30 periods, for the seed to have faded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandas_ta as ta

from shared.parameters import StrategyParameters
from shared.trading.incremental import IndicatorSpec
from shared.trading.vocabulary import IndicatorKind

ATR_PERIOD = 14
INDICATOR_COLUMNS = ("ema_short", "ema_long", "ema_filter", "rsi", "volume_avg", "atr")
_SOURCED = frozenset({IndicatorKind.EMA, IndicatorKind.SMA, IndicatorKind.RSI})


def _values(series: pd.Series | None, length: int) -> npt.NDArray[np.float64]:
    # pandas-ta returns None when the series is shorter than the period.
    if series is None:
        return np.full(length, np.nan)
    values: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64)
    return values


def compute_indicators(frame: pd.DataFrame, params: StrategyParameters, *, with_atr: bool = True) -> pd.DataFrame:
    """Indicator columns ``ema_short, ema_long, ema_filter, rsi, volume_avg, atr`` for a candle frame.

    ``frame`` holds float64 columns ``open, high, low, close, volume`` (any index; the result
    has the same index and length). Prices keep the quote unit; RSI is 0-100; ``volume_avg`` is
    in the base unit. ``with_atr=False`` leaves ATR (display only, not used by the rules) as NaN
    to save time in bulk runs. Values are NaN during each indicator's warm-up.
    """
    n = len(frame)
    close = frame["close"].astype(np.float64)
    volume = frame["volume"].astype(np.float64)
    columns = {
        "ema_short": _values(ta.ema(close, length=params.EMA_SHORT_PERIOD, talib=False), n),
        "ema_long": _values(ta.ema(close, length=params.EMA_LONG_PERIOD, talib=False), n),
        "ema_filter": _values(ta.ema(close, length=params.EMA_FILTER_PERIOD, talib=False), n),
        "rsi": _values(ta.rsi(close, length=params.RSI_PERIOD, talib=False), n).copy(),
        "volume_avg": _values(ta.sma(volume, length=params.VOLUME_AVG_PERIOD, talib=False), n),
        "atr": np.full(n, np.nan),
    }
    columns["rsi"][: params.RSI_PERIOD] = np.nan
    if with_atr and n > ATR_PERIOD:
        high = frame["high"].astype(np.float64)
        low = frame["low"].astype(np.float64)
        columns["atr"] = _values(ta.atr(high, low, close, length=ATR_PERIOD, talib=False), n)
    return pd.DataFrame(columns, index=frame.index)


@dataclass(frozen=True)
class IndicatorRow:
    """One closed candle with its indicator values, as the rules read it (prices in quote units)."""

    open_time: int
    close: float
    volume: float
    ema_short: float
    ema_long: float
    ema_filter: float
    rsi: float
    volume_avg: float
    atr: float = math.nan


def indicator_row(frame: pd.DataFrame, indicators: pd.DataFrame, position: int) -> IndicatorRow:
    """The row at integer ``position`` (negative counts from the end) of a candle frame and its indicators.

    ``open_time`` is read from an ``open_time`` column (epoch ms) when present, else it is -1.
    """
    candle = frame.iloc[position]
    values = indicators.iloc[position]
    open_time = int(candle["open_time"]) if "open_time" in frame.columns else -1
    return IndicatorRow(
        open_time=open_time,
        close=float(candle["close"]),
        volume=float(candle["volume"]),
        **{name: float(values[name]) for name in INDICATOR_COLUMNS},
    )


def latest_rows(frame: pd.DataFrame, params: StrategyParameters) -> tuple[IndicatorRow, IndicatorRow]:
    """``(previous, current)`` rows of the last two closed candles of ``frame``, ready for ``rules.evaluate``."""
    if len(frame) < 2:
        raise ValueError("need at least two closed candles")
    indicators = compute_indicators(frame, params)
    return indicator_row(frame, indicators, -2), indicator_row(frame, indicators, -1)


def vectorised(frame: pd.DataFrame, specs: tuple[IndicatorSpec, ...]) -> pd.DataFrame:
    """The columns of ``specs`` over a candle frame, by pandas-ta (the reference of the
    incremental forms in ``shared.trading.incremental``); NaN before each one's ``first_index``."""
    n = len(frame)
    columns: dict[str, npt.NDArray[np.float64]] = {}
    for spec in specs:
        source = frame[spec.source].astype(np.float64) if spec.kind in _SOURCED else None
        if spec.kind is IndicatorKind.EMA:
            values = _values(ta.ema(source, length=spec.period, talib=False), n)
        elif spec.kind is IndicatorKind.SMA:
            values = _values(ta.sma(source, length=spec.period, talib=False), n)
        elif spec.kind is IndicatorKind.RSI:
            values = _values(ta.rsi(source, length=spec.period, talib=False), n).copy()
        elif spec.kind is IndicatorKind.ATR:
            values = _values(
                None
                if n <= spec.period
                else ta.atr(
                    frame["high"].astype(np.float64),
                    frame["low"].astype(np.float64),
                    frame["close"].astype(np.float64),
                    length=spec.period,
                    talib=False,
                ),
                n,
            )
        elif spec.kind is IndicatorKind.HIGHEST:
            values = frame["high"].astype(np.float64).rolling(spec.period, min_periods=spec.period).max().to_numpy()
        else:
            values = frame["low"].astype(np.float64).rolling(spec.period, min_periods=spec.period).min().to_numpy()
        values = np.array(values, dtype=np.float64)
        values[: spec.first_index] = np.nan
        columns[spec.name] = values
    return pd.DataFrame(columns, index=frame.index)
