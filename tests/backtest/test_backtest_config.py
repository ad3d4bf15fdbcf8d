"""The KEY=VALUE parameter string of the command line and the default symbol filters."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backtest.config import DEFAULT_BALANCE, DEFAULT_FEE, default_filters, parse_run_settings
from shared.parameters import ParameterError, StrategyParameters


def test_empty_string_gives_the_defaults() -> None:
    params, config = parse_run_settings("", symbol="BTCUSDT")
    assert params == StrategyParameters()
    assert (config.fee, config.balance) == (DEFAULT_FEE, DEFAULT_BALANCE) == (D("0.001"), D("10000"))
    f = config.resolved_filters()
    assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (D("0.01"), D("0.00001"), D("0.00001"), D("5"))


def test_strategy_and_backtest_settings_are_split() -> None:
    params, config = parse_run_settings(
        "EMA_SHORT_PERIOD=12, use_volume_confirmation=true FEE=0.00075 BALANCE=250 TICK_SIZE=0.1 STEP_SIZE=0.001 "
        "MIN_NOTIONAL=10",
        symbol="ETHUSDT",
    )
    assert params.EMA_SHORT_PERIOD == 12 and params.USE_VOLUME_CONFIRMATION is True
    assert (config.fee, config.balance) == (D("0.00075"), D("250"))
    f = config.resolved_filters()
    assert (f.tick_size, f.step_size, f.min_qty, f.min_notional) == (D("0.1"), D("0.001"), D("0.001"), D("10"))


def test_problems_are_all_reported_by_name() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_run_settings("EMA_SHORT_PERIOD=40 FEE=abc BALANCE=0 junk RSI_PERIOD=3 RSI_PERIOD=4")
    names = [name for name, _ in caught.value.problems]
    assert set(names) == {"EMA_SHORT_PERIOD", "FEE", "BALANCE", "junk", "RSI_PERIOD"}


def test_balance_option_and_parameter_conflict() -> None:
    assert parse_run_settings("", balance=D("500"))[1].balance == D("500")
    with pytest.raises(ParameterError, match="BALANCE"):
        parse_run_settings("BALANCE=100", balance=D("500"))


def test_default_filters_per_symbol() -> None:
    assert default_filters("DOGEUSDT").step_size == D("1") and default_filters("DOGEUSDT").tick_size == D("0.00001")
    assert default_filters("ETHUSDT").step_size == D("0.0001")
    other = default_filters("SOLUSDT")
    assert other.symbol == "SOLUSDT" and other.tick_size == D("0.01")
