"""The backtester applies the executor's circuit breaker (``shared.trading.breaker.advance``):
a tight limit gives fewer trades, the same trades up to the trip, and the refused entries say why."""

from __future__ import annotations

from decimal import Decimal as D
from itertools import pairwise
from pathlib import Path

from backtest import BacktestConfig, run_backtest
from shared.candles import load_candles
from shared.parameters import StrategyParameters
from shared.trading.breaker import DAY_MS, BreakerLimits

DEFAULTS = StrategyParameters()


def test_a_tight_losing_streak_limit_stops_entries_after_the_same_trades(sample_file: Path) -> None:
    data = load_candles(sample_file)
    free = run_backtest(data, DEFAULTS)
    losses = [i for i, t in enumerate(free.trades) if t.quote_received < t.quote_spent]
    first_two = next(i for a, i in pairwise(losses) if i == a + 1)  # two losses in a row
    tight = run_backtest(data, DEFAULTS, BacktestConfig(breaker=BreakerLimits(max_losing_streak=2)))
    assert tight.trades == free.trades[: first_two + 1]
    refused = [s for s in tight.skipped if s.reason.startswith("circuit breaker tripped on losing_streak")]
    assert refused and refused[0].time > free.trades[first_two].exit_time


def test_a_tight_daily_loss_limit_pauses_each_day_and_resumes_at_the_next_utc_market_day(sample_file: Path) -> None:
    data = load_candles(sample_file)
    free = run_backtest(data, DEFAULTS)
    tight = run_backtest(data, DEFAULTS, BacktestConfig(breaker=BreakerLimits(daily_loss_pct=D("0.05"))))
    assert 0 < len(tight.trades) < len(free.trades)
    first_cut = next(i for i, (a, b) in enumerate(zip(tight.trades, free.trades, strict=False)) if a != b)
    assert tight.trades[:first_cut] == free.trades[:first_cut]
    refused = [s for s in tight.skipped if "daily_loss" in s.reason]
    assert refused
    days_traded = {t.entry_time // DAY_MS for t in tight.trades}
    assert len(days_traded) > 1, "trading resumed on a later market day"


def test_off_by_default_the_run_is_unchanged(sample_file: Path) -> None:
    data = load_candles(sample_file)
    assert (
        run_backtest(data, DEFAULTS).trades
        == run_backtest(data, DEFAULTS, BacktestConfig(breaker=BreakerLimits())).trades
    )
