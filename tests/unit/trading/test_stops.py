"""ATR, trailing and break-even stops (hand-computed on a 0.01 tick)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.parameters import ParameterError, StrategyParameters, validate_parameters
from shared.trading.incremental import Atr
from shared.trading.stops import (
    StopRules,
    atr_stop,
    atr_trailed_stop,
    atr_window,
    break_even_stop,
    initial_levels,
    moved_stop,
    stop_rules,
    trailed_stop,
    window_atr,
)
from shared.trading.vocabulary import StopMode

D = Decimal
TICK = D("0.01")


def test_an_atr_stop_is_k_atr_below_the_entry_rounded_up_to_the_tick() -> None:
    assert atr_stop(D("100"), D("1.234"), D("2"), TICK) == D("97.54")  # 100 - 2.468 = 97.532 -> 97.54
    assert atr_stop(D("100"), D("0.001"), D("1"), TICK) == D("99.99")  # never at the entry itself


@pytest.mark.parametrize(("atr", "multiplier"), [(D(0), D(2)), (D(60), D(2)), (D(1), D(0))])
def test_an_atr_stop_that_cannot_be_a_stop_is_refused(atr: Decimal, multiplier: Decimal) -> None:
    with pytest.raises(ValueError, match=r"positive|below zero"):
        atr_stop(D("100"), atr, multiplier, TICK)


def test_a_trailing_stop_ratchets_up_behind_the_highest_close_and_never_down() -> None:
    assert trailed_stop(D("98"), D("105"), D("0.02"), TICK) == D("102.90")  # 105 x 0.98
    assert trailed_stop(D("102.90"), D("101"), D("0.02"), TICK) == D("102.90")  # a lower close: kept
    assert trailed_stop(D("98"), D("100.005"), D("0.02"), TICK) == D("98.01")  # 98.0049 rounded up
    with pytest.raises(ValueError, match="within"):
        trailed_stop(D("98"), D("105"), D("1"), TICK)


def test_break_even_moves_the_stop_to_the_entry_once_the_close_reached_the_distance() -> None:
    assert break_even_stop(D("98"), D("100"), D("100.99"), D("0.01"), TICK) == D("98")
    assert break_even_stop(D("98"), D("100"), D("101"), D("0.01"), TICK) == D("100")
    assert break_even_stop(D("100.5"), D("100"), D("101"), D("0.01"), TICK) == D("100.5")  # never lowered


def test_moved_stop_takes_the_highest_rule_and_nothing_without_rules() -> None:
    both = StopRules(trailing=D("0.05"), break_even_at=D("0.01"))
    assert moved_stop(D("98"), D("100"), D("102"), both, TICK) == D("100")  # break-even 100 > trail 96.90
    assert moved_stop(D("98"), D("100"), D("110"), both, TICK) == D("104.50")  # trail 104.50 > 100
    assert moved_stop(D("98"), D("100"), D("110"), StopRules(), TICK) == D("98") and not StopRules().moves


def test_the_parameters_give_the_rules_a_zero_distance_turning_its_rule_off() -> None:
    assert stop_rules(StrategyParameters()) == StopRules()
    assert not stop_rules(StrategyParameters()).moves
    rules = stop_rules(StrategyParameters(TRAILING_STOP_PERCENTAGE=D("0.01"), BREAK_EVEN_AT_PERCENTAGE=D("0.02")))
    assert (rules.trailing, rules.break_even_at, rules.moves) == (D("0.01"), D("0.02"), True)


def test_initial_levels_are_the_percentage_ones_or_the_atr_stop() -> None:
    percent = StrategyParameters()
    assert initial_levels(D("100"), percent, TICK, None) == (D("98.00"), D("105.00"))
    atr = StrategyParameters(STOP_MODE=StopMode.ATR, ATR_STOP_MULTIPLIER=D("1.5"))
    assert initial_levels(D("100"), atr, TICK, D("2")) == (D("97.00"), D("105.00"))  # 100 - 1.5 x 2
    with pytest.raises(ValueError, match="ATR"):
        initial_levels(D("100"), atr, TICK, None)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"STOP_MODE": "chandelier"}, "STOP_MODE"),
        ({"STOP_ATR_PERIOD": 1}, "STOP_ATR_PERIOD"),
        ({"ATR_STOP_MULTIPLIER": "0"}, "ATR_STOP_MULTIPLIER"),
        ({"TRAILING_STOP_PERCENTAGE": "1"}, "TRAILING_STOP_PERCENTAGE"),
        ({"TRAILING_STOP_PERCENTAGE": "-0.01"}, "TRAILING_STOP_PERCENTAGE"),
        ({"BREAK_EVEN_AT_PERCENTAGE": "1.5"}, "BREAK_EVEN_AT_PERCENTAGE"),
    ],
)
def test_invalid_stop_parameters_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ParameterError) as raised:
        validate_parameters(values)
    assert [name for name, _ in raised.value.problems] == [field]


def test_an_atr_trailing_stop_trails_k_atr_below_each_close_and_never_down() -> None:
    rules = StopRules(atr_trailing=D("2"))
    assert moved_stop(D("98"), D("100"), D("105"), rules, TICK, D("1.234")) == D("102.54")  # 105 - 2.468
    assert moved_stop(D("102.54"), D("100"), D("104"), rules, TICK, D("0.5")) == D("103.00")  # smaller ATR
    assert moved_stop(D("103"), D("100"), D("103.5"), rules, TICK, D("1")) == D("103")  # 101.5: kept
    assert moved_stop(D("98"), D("100"), D("105"), rules, TICK, None) == D("98")  # no ATR: waits
    assert atr_trailed_stop(D("1"), D("3"), D("2"), D("2"), TICK) == D("1")  # below zero: nothing


def test_the_activation_offset_holds_trailing_back_until_a_close_is_far_enough_above_the_entry() -> None:
    rules = StopRules(trailing=D("0.02"), atr_trailing=D("1"), activation=D("0.03"))
    assert moved_stop(D("98"), D("100"), D("102.99"), rules, TICK, D("0.5")) == D("98")  # not active yet
    assert moved_stop(D("98"), D("100"), D("103"), rules, TICK, D("0.5")) == D("102.50")  # 103 - 0.5 > 100.94
    # break-even is not held back by the activation offset
    both = StopRules(trailing=D("0.02"), break_even_at=D("0.01"), activation=D("0.05"))
    assert moved_stop(D("98"), D("100"), D("101"), both, TICK) == D("100")


def test_the_window_atr_is_a_function_of_its_window_alone() -> None:
    period = 3
    size = atr_window(period)
    # Values no float holds exactly: any other order of additions would show in the last bits.
    highs = [10.1 + (i % 5) * 0.37 + i * 1e-7 for i in range(40)]
    lows = [h - 1.3 - (i % 3) * 0.29 for i, h in enumerate(highs)]
    closes = [h - 0.7 for h in highs]
    whole = window_atr(highs, lows, closes, period)
    # Any history before the window changes nothing.
    assert window_atr(highs[-size:], lows[-size:], closes[-size:], period) == whole
    assert window_atr([1.0] * 7 + highs, [0.5] * 7 + lows, [0.7] * 7 + closes, period) == whole
    assert window_atr(highs[: size - 1], lows[: size - 1], closes[: size - 1], period) is None
    # At an earlier candle, given the whole series (the backtester) or the candles up to it (the executor).
    assert window_atr(highs, lows, closes, period, 30) == window_atr(highs[:30], lows[:30], closes[:30], period)
    assert window_atr(highs, lows, closes, period, size - 1) is None
    atr = Atr(period)
    for h, lo, c in zip(highs[-size:], lows[-size:], closes[-size:], strict=True):
        value = atr.update(h, lo, c)
    assert whole == D(repr(value))


def test_the_new_trailing_parameters_give_their_rules() -> None:
    params = StrategyParameters(TRAILING_STOP_ATR_MULTIPLIER=D("2.5"), TRAILING_ACTIVATION_PERCENTAGE=D("0.01"))
    rules = stop_rules(params)
    assert (rules.atr_trailing, rules.activation, rules.moves, rules.needs_atr) == (D("2.5"), D("0.01"), True, True)
    with pytest.raises(ParameterError) as raised:
        validate_parameters({"TRAILING_STOP_ATR_MULTIPLIER": "-1", "TRAILING_ACTIVATION_PERCENTAGE": "1"})
    assert sorted(name for name, _ in raised.value.problems) == [
        "TRAILING_ACTIVATION_PERCENTAGE",
        "TRAILING_STOP_ATR_MULTIPLIER",
    ]
