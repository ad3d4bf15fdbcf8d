"""The HTML report: self-contained, small, with every part present."""

from __future__ import annotations

import re
from pathlib import Path

from backtest import run_backtest
from backtest.report import render_report
from shared.candles import load_candles
from shared.parameters import StrategyParameters


def test_report_of_the_main_series_is_self_contained_and_small(shared_data) -> None:
    result = run_backtest(load_candles(shared_data.main_series()), StrategyParameters())
    page = render_report(result)
    size = len(page.encode())
    assert size < 3_000_000, size
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, flags=re.IGNORECASE)
    assert "<script" not in page and "<link" not in page
    assert page.count("<svg") == 3
    for heading in ("Price and trades", "Equity", "Drawdown", "Trades", "Total return", "EMA_SHORT_PERIOD"):
        assert heading in page
    assert page.count('href="#up"') == len(result.trades) and page.count("<tr>") > len(result.trades)


def test_report_without_trades(sample_file: Path) -> None:
    candles = load_candles(sample_file).iloc[:40]  # shorter than the warm-up: no trade
    result = run_backtest(candles, StrategyParameters())
    page = render_report(result)
    assert result.trades == [] and "<svg" in page and "n/a" in page
