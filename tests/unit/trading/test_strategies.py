"""The built-in strategies: each rule by hand, the parameter models, and the per-candle rules
agreeing with the vectorised ones on every candle of the shared data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from shared.candles import load_candles
from shared.parameters import ParameterError
from shared.trading.strategies import Row, builtin_registry
from shared.trading.strategies.donchian_breakout import DonchianBreakout
from shared.trading.strategies.rsi2_reversion import Rsi2Reversion

NAN = math.nan
REGISTRY = builtin_registry()


def row(close: float, **values: float) -> Row:
    return Row(open_time=0, open=close, high=close, low=close, close=close, volume=1.0, values=values)


def test_rsi2_enters_a_dip_above_the_trend_and_exits_above_the_short_average() -> None:
    strategy, params = Rsi2Reversion(), Rsi2Reversion().parameters()
    before = row(100.0, rsi=30.0, trend_sma=90.0, exit_sma=101.0)
    dip = strategy.evaluate(before, row(99.0, rsi=8.0, trend_sma=90.0, exit_sma=101.0), params)
    assert dip.warm and dip.entry and not dip.exit
    assert dip.condition("rsi_below_entry").value == 8.0 and dip.condition("rsi_below_entry").threshold == 10.0
    assert not strategy.evaluate(before, row(89.0, rsi=8.0, trend_sma=90.0, exit_sma=101.0), params).entry  # downtrend
    assert not strategy.evaluate(before, row(99.0, rsi=10.0, trend_sma=90.0, exit_sma=101.0), params).entry  # not below
    recovered = strategy.evaluate(before, row(102.0, rsi=70.0, trend_sma=90.0, exit_sma=101.0), params)
    assert recovered.exit and not recovered.entry
    assert recovered.condition("close_above_exit_average").threshold == 101.0
    warming = strategy.evaluate(row(100.0, rsi=30.0, trend_sma=NAN, exit_sma=1.0), before, params)
    assert not warming.warm and warming.missing == ("trend_sma",) and not warming.entry


def test_donchian_enters_above_the_previous_channel_with_enough_volatility() -> None:
    strategy, params = DonchianBreakout(), DonchianBreakout().parameters()
    before = row(100.0, channel_high=105.0, channel_low=95.0, atr=1.0)
    breakout = strategy.evaluate(before, row(106.0, channel_high=106.0, channel_low=95.0, atr=1.0), params)
    assert breakout.entry and breakout.condition("close_above_channel").threshold == 105.0  # the channel before
    assert not strategy.evaluate(before, row(105.0, channel_high=105.0, channel_low=95.0, atr=1.0), params).entry
    quiet = strategy.evaluate(before, row(106.0, channel_high=106.0, channel_low=95.0, atr=0.01), params)
    assert not quiet.entry and not quiet.condition("atr_ratio_above_minimum").passed
    breakdown = strategy.evaluate(before, row(94.0, channel_high=105.0, channel_low=94.0, atr=1.0), params)
    assert breakdown.exit and not breakdown.entry


def test_parameter_models_name_the_field_and_check_across_fields() -> None:
    with pytest.raises(ParameterError) as error:
        Rsi2Reversion().parameters({"ENTRY_RSI": 150})
    assert error.value.problems[0][0] == "ENTRY_RSI"
    with pytest.raises(ParameterError, match="EXIT_PERIOD must be smaller"):
        Rsi2Reversion().parameters({"EXIT_PERIOD": 300})
    with pytest.raises(ParameterError, match="EXIT_PERIOD must not be longer"):
        DonchianBreakout().parameters({"EXIT_PERIOD": 30})
    with pytest.raises(ParameterError) as error:
        DonchianBreakout().parameters({"NOPE": 1})
    assert error.value.problems[0][0] == "NOPE"
    schema = Rsi2Reversion().schema()["parameters"]["properties"]["TREND_PERIOD"]
    assert (schema["title"], schema["unit"], schema["live_safe"], schema["minimum"]) == (
        "Trend average period",
        "candles",
        False,
        2,
    )
    with pytest.raises(ValidationError):  # frozen
        Rsi2Reversion().parameters().ENTRY_RSI = 5  # type: ignore[misc]


# Every candle of the six shared files (about 450,000) through evaluate(): a minute of CPU on a busy machine.
@pytest.mark.timeout(360)
@pytest.mark.parametrize("name", REGISTRY.names())
def test_per_candle_rules_equal_the_vectorised_ones_on_every_shared_file(shared_data, name: str) -> None:
    strategy = REGISTRY.get(name)
    params = strategy.parameters()
    signalled = 0
    for path in shared_data.all_files(expected=6):
        frame = load_candles(path).reset_index(drop=True)
        columns = strategy.compute(frame, params)
        candles = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
        entry, exit_ = strategy.signal_arrays(columns, candles, params)
        names = list(columns.columns)
        values = [dict(zip(names, v, strict=True)) for v in columns.itertuples(index=False, name=None)]
        rows = [
            Row(0, *ohlcv, values=v)
            for ohlcv, v in zip(
                zip(*(candles[c] for c in ("open", "high", "low", "close", "volume")), strict=True), values, strict=True
            )
        ]
        decisions = [strategy.evaluate(rows[i - 1], rows[i], params) for i in range(1, len(rows))]
        assert [d.entry for d in decisions] == entry[1:].tolist(), path.name
        assert [d.exit for d in decisions] == exit_[1:].tolist(), path.name
        assert not entry[0] and not exit_[0]
        signalled += int(entry.sum())
    assert signalled > 0  # the comparison covers entries


def test_warmup_follows_the_indicators() -> None:
    assert Rsi2Reversion().warmup_candles(Rsi2Reversion().parameters()) == 201
    assert DonchianBreakout().warmup_candles(DonchianBreakout().parameters()) == 21
    ema = REGISTRY.get("ema_cross_rsi")
    assert ema.warmup_candles(ema.parameters()) == ema.parameters().warmup_candles()
