"""Entry/exit rules: each condition by hand, warm-up, and the per-candle and vectorised forms agreeing on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.candles import load_candles
from shared.parameters import StrategyParameters
from shared.trading.indicators import IndicatorRow, compute_indicators
from shared.trading.rules import evaluate, required_indicators, signal_arrays

NAN = math.nan
DEFAULTS = StrategyParameters()  # RSI 75 / 25, EMA filter on, volume confirmation off


def row(
    ema_short: float,
    ema_long: float,
    *,
    rsi: float = 50.0,
    close: float = 101.0,
    ema_filter: float = 100.0,
    volume: float = 10.0,
    volume_avg: float = 5.0,
) -> IndicatorRow:
    return IndicatorRow(
        open_time=0,
        close=close,
        volume=volume,
        ema_short=ema_short,
        ema_long=ema_long,
        ema_filter=ema_filter,
        rsi=rsi,
        volume_avg=volume_avg,
    )


def test_entry_when_short_ema_crosses_above_long_ema() -> None:
    decision = evaluate(row(99.0, 100.0), row(100.5, 100.0), DEFAULTS)
    assert decision.warm and decision.entry and not decision.exit
    cross = decision.condition("ema_cross_up")
    assert cross is not None and cross.passed
    assert (cross.value, cross.threshold, cross.previous_value, cross.previous_threshold) == (100.5, 100.0, 99.0, 100.0)


def test_cross_up_counts_a_previous_touch_but_not_a_current_touch() -> None:
    assert evaluate(row(100.0, 100.0), row(100.1, 100.0), DEFAULTS).entry  # previous equal: <= holds
    assert not evaluate(row(99.0, 100.0), row(100.0, 100.0), DEFAULTS).entry  # current equal: > fails
    assert not evaluate(row(100.2, 100.0), row(100.5, 100.0), DEFAULTS).entry  # already above: no cross


def test_rsi_must_be_strictly_below_overbought() -> None:
    below = evaluate(row(99, 100), row(101, 100, rsi=74.99), DEFAULTS)
    at = evaluate(row(99, 100), row(101, 100, rsi=75.0), DEFAULTS)
    assert below.entry and not at.entry
    failed = at.condition("rsi_below_overbought")
    assert failed is not None and not failed.passed and (failed.value, failed.threshold) == (75.0, 75.0)


def test_ema_filter_requires_close_strictly_above_the_filter_ema() -> None:
    assert evaluate(row(99, 100), row(101, 100, close=100.01, ema_filter=100.0), DEFAULTS).entry
    blocked = evaluate(row(99, 100), row(101, 100, close=100.0, ema_filter=100.0), DEFAULTS)
    assert not blocked.entry and not blocked.condition("close_above_ema_filter").passed
    off = DEFAULTS.model_copy(update={"USE_EMA_FILTER": False})
    free = evaluate(row(99, 100), row(101, 100, close=90.0, ema_filter=100.0), off)
    assert free.entry and free.condition("close_above_ema_filter") is None


def test_volume_confirmation_requires_volume_strictly_above_its_average() -> None:
    on = DEFAULTS.model_copy(update={"USE_VOLUME_CONFIRMATION": True})
    assert evaluate(row(99, 100), row(101, 100, volume=5.01, volume_avg=5.0), on).entry
    blocked = evaluate(row(99, 100), row(101, 100, volume=5.0, volume_avg=5.0), on)
    assert not blocked.entry and not blocked.condition("volume_above_average").passed
    assert evaluate(row(99, 100), row(101, 100, volume=1.0, volume_avg=5.0), DEFAULTS).entry  # off by default


def test_exit_when_short_ema_crosses_below_long_ema_above_oversold() -> None:
    decision = evaluate(row(100.0, 100.0), row(99.5, 100.0, rsi=25.01), DEFAULTS)
    assert decision.exit and not decision.entry
    assert not evaluate(row(100.0, 100.0), row(99.5, 100.0, rsi=25.0), DEFAULTS).exit  # RSI must be > 25
    assert not evaluate(row(101.0, 100.0), row(100.0, 100.0), DEFAULTS).exit  # current equal: < fails
    assert not evaluate(row(99.0, 100.0), row(98.0, 100.0), DEFAULTS).exit  # already below


def test_conditions_are_listed_in_order_with_their_values() -> None:
    decision = evaluate(row(99, 100), row(101, 100, rsi=80.0), DEFAULTS)
    assert [c.name for c in decision.conditions] == [
        "ema_cross_up",
        "rsi_below_overbought",
        "close_above_ema_filter",
        "ema_cross_down",
        "rsi_above_oversold",
    ]
    assert [c.passed for c in decision.conditions] == [True, False, True, False, True]
    text = decision.describe()
    assert text.startswith("no signal") and "rsi_below_overbought: 80 vs 75 failed" in text


def test_no_signal_while_an_enabled_indicator_is_nan() -> None:
    decision = evaluate(row(99, 100, ema_filter=NAN), row(101, 100), DEFAULTS)
    assert not decision.warm and not decision.entry and not decision.exit
    assert decision.missing == ("ema_filter",) and decision.conditions == ()
    assert "ema_filter" in decision.describe()
    off = DEFAULTS.model_copy(update={"USE_EMA_FILTER": False})
    assert evaluate(row(99, 100, ema_filter=NAN), row(101, 100, ema_filter=NAN), off).entry
    assert not evaluate(row(NAN, 100), row(101, 100), DEFAULTS).warm
    assert not evaluate(
        row(99, 100), row(101, 100, volume_avg=NAN), DEFAULTS.model_copy(update={"USE_VOLUME_CONFIRMATION": True})
    ).warm


def test_signal_arrays_on_a_hand_made_series() -> None:
    nan = np.nan
    indicators = {
        "ema_short": np.array([nan, 99.0, 101.0, 102.0, 99.0, 100.0, 101.0, 99.0]),
        "ema_long": np.array([nan, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0]),
        "ema_filter": np.array([nan, 90.0, 90.0, 90.0, 90.0, 90.0, 200.0, 90.0]),
        "rsi": np.array([nan, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 20.0]),
        "volume_avg": np.full(8, 1.0),
    }
    close = np.full(8, 100.0)
    entry, exit_ = signal_arrays(indicators, close, np.full(8, 2.0), DEFAULTS)
    # 2: cross up; 4: cross down; 5: no cross (equal now); 6: cross up but close below filter;
    # 7: cross down but RSI not above oversold.
    assert entry.tolist() == [False, False, True, False, False, False, False, False]
    assert exit_.tolist() == [False, False, False, False, True, False, False, False]


def _check_agreement(path: Path, params: StrategyParameters) -> int:
    candles = load_candles(path)
    indicators = compute_indicators(candles, params)
    close, volume = candles["close"].to_numpy(), candles["volume"].to_numpy()
    entry, exit_ = signal_arrays(indicators, close, volume, params)
    columns = {name: indicators[name].to_numpy() for name in indicators.columns}
    times = candles["open_time"].to_numpy()
    rows = [
        IndicatorRow(int(times[i]), float(close[i]), float(volume[i]), *(float(columns[c][i]) for c in columns))
        for i in range(len(candles))
    ]
    assert not entry[0] and not exit_[0]
    for i in range(1, len(rows)):
        decision = evaluate(rows[i - 1], rows[i], params)
        assert (decision.entry, decision.exit) == (bool(entry[i]), bool(exit_[i])), f"candle {i} of {path.name}"
    return int(entry.sum() + exit_.sum())


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"USE_VOLUME_CONFIRMATION": True, "USE_EMA_FILTER": False, "RSI_OVERBOUGHT": 60.0, "RSI_OVERSOLD": 40.0},
    ],
)
def test_per_candle_and_vectorised_rules_agree_on_every_candle(shared_data, overrides: dict[str, object]) -> None:
    params = StrategyParameters(**overrides)
    signals = _check_agreement(shared_data.file("BTCUSDT_1m_2023-03-16_2023-05-01.csv.gz"), params)
    assert signals > 1000


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"USE_VOLUME_CONFIRMATION": True},
        {"USE_EMA_FILTER": False},
        {"RSI_PERIOD": 60, "EMA_LONG_PERIOD": 30},
    ],
)
def test_warmup_candles_is_where_the_rules_start(overrides: dict[str, object]) -> None:
    params = StrategyParameters(**overrides)
    n = 300
    close = 100 + np.sin(np.arange(n) / 2.0)
    candles = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": np.ones(n)})
    indicators = compute_indicators(candles, params)
    known = np.all([indicators[name].notna().to_numpy() for name in required_indicators(params)], axis=0)
    first_warm = int(np.flatnonzero(known[1:] & known[:-1])[0]) + 1
    assert first_warm + 1 == params.warmup_candles()
