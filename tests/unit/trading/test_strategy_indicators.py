"""Indicators: hand-computed values, warm-up, no TA-Lib hand-off, and agreement with TA-Lib on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from shared.candles import load_candles
from shared.parameters import StrategyParameters
from shared.trading.indicators import (
    INDICATOR_COLUMNS,
    compute_indicators,
    indicator_row,
    latest_rows,
)

SMALL = StrategyParameters(
    EMA_SHORT_PERIOD=2, EMA_LONG_PERIOD=3, EMA_FILTER_PERIOD=4, RSI_PERIOD=2, VOLUME_AVG_PERIOD=3
)


def frame(close: list[float], volume: list[float] | None = None) -> pd.DataFrame:
    close_array = np.array(close, dtype=float)
    return pd.DataFrame(
        {
            "open_time": np.arange(len(close), dtype=np.int64) * 60_000,
            "open": close_array,
            "high": close_array + 1,
            "low": close_array - 1,
            "close": close_array,
            "volume": np.array(volume if volume is not None else [1.0] * len(close)),
        }
    )


def test_columns_index_and_length_follow_the_input() -> None:
    candles = frame([1, 2, 3, 4, 5]).set_index(pd.RangeIndex(10, 15))
    result = compute_indicators(candles, SMALL)
    assert tuple(result.columns) == INDICATOR_COLUMNS
    assert list(result.index) == list(range(10, 15))
    assert all(result[c].dtype == np.float64 for c in result.columns)


def test_ema_is_seeded_with_the_simple_average_then_smoothed() -> None:
    # EMA(3): seed = mean(1, 2, 3) = 2 at index 2; alpha = 2 / (3 + 1) = 0.5.
    result = compute_indicators(frame([1, 2, 3, 4, 5]), SMALL)
    np.testing.assert_allclose(result["ema_long"], [np.nan, np.nan, 2.0, 3.0, 4.0], rtol=1e-15)
    # EMA(2): seed = 1.5 at index 1; alpha = 2/3: 2/3*3 + 1/3*1.5 = 2.5, then 3.5, 4.5.
    np.testing.assert_allclose(result["ema_short"], [np.nan, 1.5, 2.5, 3.5, 4.5], rtol=1e-15)


def test_rsi_uses_wilder_smoothing_and_waits_for_a_full_period() -> None:
    # changes +1, +1, -1; Wilder alpha = 1/2: gains 1, 1, 0.5; losses 0, 0, 0.5.
    result = compute_indicators(frame([1, 2, 3, 2]), SMALL)
    np.testing.assert_allclose(result["rsi"], [np.nan, np.nan, 100.0, 50.0], rtol=1e-15)


def test_volume_average_is_a_simple_moving_average() -> None:
    result = compute_indicators(frame([1, 2, 3, 4], volume=[3, 6, 9, 30]), SMALL)
    np.testing.assert_allclose(result["volume_avg"], [np.nan, np.nan, 6.0, 15.0], rtol=1e-15)


def test_too_short_series_give_nan_instead_of_failing() -> None:
    result = compute_indicators(frame([1, 2]), StrategyParameters())
    assert result.shape == (2, len(INDICATOR_COLUMNS))
    assert result.isna().all().all()


def test_warm_up_lengths_per_indicator() -> None:
    candles = frame(list(100 + np.sin(np.arange(80) / 3)))
    params = StrategyParameters()
    result = compute_indicators(candles, params)
    first = {name: int(result[name].notna().to_numpy().argmax()) for name in INDICATOR_COLUMNS}
    assert first == {"ema_short": 8, "ema_long": 20, "ema_filter": 49, "rsi": 14, "volume_avg": 19, "atr": 13}
    assert result.iloc[first["ema_filter"] :].notna().all().all()


def test_pandas_ta_does_not_hand_off_to_talib(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("TA-Lib was called")

    for name in ("EMA", "RSI", "ATR", "SMA", "TRANGE"):
        monkeypatch.setattr(talib, name, refuse)
    result = compute_indicators(frame(list(range(1, 60))), StrategyParameters())
    assert result["atr"].notna().any() and result["rsi"].notna().any()


def test_latest_rows_pair_the_last_two_candles() -> None:
    candles = frame([1, 2, 3, 4, 5])
    previous, current = latest_rows(candles, SMALL)
    assert (previous.open_time, current.open_time) == (180_000, 240_000)
    assert (previous.close, current.close, current.ema_long) == (4.0, 5.0, 4.0)
    assert indicator_row(candles, compute_indicators(candles, SMALL), 2).ema_long == 2.0


def _relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-300)))


def test_ema_rsi_atr_match_talib_on_every_shared_file(shared_data) -> None:
    files = shared_data.all_files(expected=6)
    params = StrategyParameters()
    for path in files:
        candles = load_candles(path)
        ours = compute_indicators(candles, params)
        close, high, low = (candles[c].to_numpy() for c in ("close", "high", "low"))
        reference = {
            "ema_short": talib.EMA(close, params.EMA_SHORT_PERIOD),
            "ema_long": talib.EMA(close, params.EMA_LONG_PERIOD),
            "ema_filter": talib.EMA(close, params.EMA_FILTER_PERIOD),
            "rsi": talib.RSI(close, params.RSI_PERIOD),
            "atr": talib.ATR(high, low, close, 14),
        }
        for name, expected in reference.items():
            error = _relative_error(ours[name].to_numpy()[500:], expected[500:])
            assert error < 1e-9, f"{path.name} {name}: relative error {error:.3g}"
