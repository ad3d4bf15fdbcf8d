"""Backtester of the EMA-cross strategy, sharing its indicators, rules, sizing and protection with the live services.

Python API: ``run_backtest(candles, params, config) -> BacktestResult``; command line:
``python -m backtest --data <csv> [--params "KEY=VALUE ..."]`` (see ``docs/backtest.md``).
"""

from backtest.config import BacktestConfig, default_filters, parse_run_settings
from backtest.engine import BacktestResult, SkippedEntry, Trade, run_backtest
from backtest.storage import latest_report_path, report_key, report_paths

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "SkippedEntry",
    "Trade",
    "default_filters",
    "latest_report_path",
    "parse_run_settings",
    "report_key",
    "report_paths",
    "run_backtest",
]
