"""The search space: bounds from the strategy's parameter model, or given; errors name the field."""

from __future__ import annotations

import pytest

from backtest.optimize.space import Dimension, assignment_text, grid, grid_points, grid_size, parse_space
from shared.parameters import ParameterError, StrategyParameters
from shared.trading.strategies import builtin_registry


def test_bare_names_take_the_models_bounds() -> None:
    model = builtin_registry().get("rsi2_reversion").Parameters
    dims = {d.name: d for d in parse_space("RSI_PERIOD ENTRY_RSI", model)}
    assert dims["RSI_PERIOD"] == Dimension("RSI_PERIOD", "int", 2, 50)
    entry = dims["ENTRY_RSI"]  # gt=0, lt=100: open bounds stay inside
    assert entry.kind == "float" and 0 < entry.low < 1e-3 and 99.999 < entry.high < 100


def test_given_bounds_and_the_risk_settings() -> None:
    dims = parse_space("EMA_SHORT_PERIOD=5:30 STOP_LOSS_PERCENTAGE=0.005:0.05:0.005 USE_EMA_FILTER", StrategyParameters)
    assert dims == [
        Dimension("EMA_SHORT_PERIOD", "int", 5, 30),
        Dimension("STOP_LOSS_PERCENTAGE", "float", 0.005, 0.05, 0.005),
        Dimension("USE_EMA_FILTER", "bool"),
    ]


def test_every_bad_entry_is_named() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_space("NOPE EMA_SHORT_PERIOD EMA_LONG_PERIOD=30:10 RSI_PERIOD=a:b", StrategyParameters)
    named = dict(caught.value.problems)
    assert set(named) == {"NOPE", "EMA_SHORT_PERIOD", "EMA_LONG_PERIOD", "RSI_PERIOD"}
    assert "no bounds" in named["EMA_SHORT_PERIOD"]
    with pytest.raises(ParameterError, match="at least one"):
        parse_space("", StrategyParameters)


def test_assignment_text_is_what_the_backtester_parses() -> None:
    assert assignment_text({"A": 3, "B": True, "C": 0.0123456789012}) == "A=3 B=true C=0.0123456789"


def test_the_grid_of_a_space() -> None:
    dims = parse_space("EMA_SHORT_PERIOD=4:19 EMA_LONG_PERIOD=21:97:4 USE_EMA_FILTER", StrategyParameters)
    values = grid(dims)
    assert values["EMA_SHORT_PERIOD"] == list(range(4, 20))
    assert values["EMA_LONG_PERIOD"] == list(range(21, 98, 4)) and values["USE_EMA_FILTER"] == [False, True]
    assert grid_size(dims) == 16 * 20 * 2 == len(grid_points(dims))
    # A float grid in decimal steps (0.005 + 2 x 0.005 would be 0.015000000000000001 in float).
    (stop,) = parse_space("STOP_LOSS_PERCENTAGE=0.005:0.02:0.005", StrategyParameters)
    assert stop.grid_values() == [0.005, 0.01, 0.015, 0.02]
    # A high bound off the step is lowered to the last step (Optuna would warn and do the same).
    (short,) = parse_space("EMA_SHORT_PERIOD=3:8:2", StrategyParameters)
    assert short.high == 7 and short.grid_values() == [3, 5, 7]
    with pytest.raises(ParameterError) as caught:
        grid(parse_space("STOP_LOSS_PERCENTAGE=0.005:0.02 TAKE_PROFIT_PERCENTAGE=0.01:0.05", StrategyParameters))
    assert {name for name, _ in caught.value.problems} == {"STOP_LOSS_PERCENTAGE", "TAKE_PROFIT_PERCENTAGE"}
