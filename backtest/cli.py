"""Command line of the backtester:
``python -m backtest --data <csv|parquet> [--strategy NAME] [--params "KEY=VALUE ..."] [--json F] [--report F]``.

Exit status 0 on success, 2 on a bad argument, parameter or data file (nothing is written then).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from backtest.config import BREAKER_KEYS, parse_run_settings, strategy_run_parameters
from backtest.engine import BacktestResult, run_backtest
from backtest.metrics import iso_time
from backtest.report import render_report
from backtest.storage import json_bytes, report_paths, write_atomic
from shared.candles import CandleFileError, candle_identity, load_candles
from shared.parameters import ParameterError
from shared.strategy_loader import StrategyLoadError, load_registry
from shared.trading.strategies import DEFAULT_STRATEGY

STAGES = ("load", "indicators", "signals", "simulation", "statistics", "output")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m backtest``."""
    parser = argparse.ArgumentParser(prog="python -m backtest", description="Backtest a strategy on a candle file.")
    parser.add_argument(
        "--data",
        required=True,
        help="candle CSV (.csv or .csv.gz) named <SYMBOL>_<interval>_..., "
        "or a Parquet month file or series folder written by python -m research.data",
    )
    parser.add_argument(
        "--strategy",
        default=DEFAULT_STRATEGY,
        help=f"strategy name (default {DEFAULT_STRATEGY}): a built-in or one of STRATEGY_PATH's files",
    )
    parser.add_argument(
        "--strategy-path",
        default=None,
        help="folder of user strategies (default $STRATEGY_PATH, else strategies/ at the repo root)",
    )
    parser.add_argument(
        "--params",
        default="",
        help='space-separated KEY=VALUE, e.g. "EMA_SHORT_PERIOD=12 FEE=0.001"; '
        "the strategy's own parameters and the risk settings alike",
    )
    parser.add_argument("--json", type=Path, help="write {summary, trades} as JSON here")
    parser.add_argument("--report", type=Path, help="write the HTML report here")
    parser.add_argument("--report-dir", type=Path, help="write <report_key>.html and .json into this folder")
    parser.add_argument("--balance", help="starting quote balance (default 10000; same as BALANCE=...)")
    for key, what in (
        ("BREAKER_DAILY_LOSS_PCT", "daily realised loss, % of the day's starting equity"),
        ("BREAKER_MAX_DRAWDOWN_PCT", "drawdown from the equity peak, %"),
        ("BREAKER_MAX_LOSING_STREAK", "losing trades in a row"),
    ):
        option = "--" + key.lower().replace("_", "-")
        parser.add_argument(
            option, metavar="N", help=f"circuit breaker: pause entries at this {what} (same as {key}=N)"
        )
    parser.add_argument("--trades", default="all", help="how many trades to list in the terminal: a number or 'all'")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def format_summary(result: BacktestResult) -> str:
    """Aligned two-column summary table for the terminal."""
    s = result.summary

    def number(value: object, unit: str = "", digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f}{unit}" if isinstance(value, float) else str(value)

    rows = [
        ("Data", f"{s.get('data_file', '')} ({s['symbol']} {s['interval']})"),
        ("Strategy", s.get("strategy", DEFAULT_STRATEGY)),
        ("Period (UTC)", f"{s['start']} .. {s['end']}"),
        ("Candles", f"{s['candles']:,} (warm-up {s['warmup_candles']})"),
        ("Starting balance", number(s["starting_balance"])),
        ("Final equity", number(s["final_equity"])),
        ("Total return", number(s["total_return_pct"], " %")),
        ("Buy and hold", number(s["buy_and_hold_return_pct"], " %")),
        ("Trades", f"{s['trades']} (" + ", ".join(f"{k} {v}" for k, v in s["exit_reasons"].items()) + ")"),
        ("Win rate", number(s["win_rate_pct"], " %")),
        ("Profit factor", number(s["profit_factor"], "", 3)),
        ("Average trade", number(s["avg_trade_return_pct"], " %", 3)),
        ("Max drawdown", number(s["max_drawdown_pct"], " %")),
        ("Exposure", number(s["exposure_pct"], " %")),
        ("Sharpe (daily, annualised)", number(s["sharpe_daily"], "", 3)),
        ("Fees paid", number(s["fees_paid"])),
        ("Skipped entries", str(s["skipped_entries"])),
        ("Settings", " ".join(f"{k}={v}" for k, v in s["settings"].items())),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def format_trades(result: BacktestResult, limit: int | None) -> str:
    """One line per trade: times (UTC), prices, reason, quantity and return."""
    trades = result.trades if limit is None else result.trades[:limit]
    lines = [
        (
            f"{'#':>5}  {'entry (UTC)':<20} {'entry price':>14}  {'exit (UTC)':<20} {'exit price':>14}  "
            f"{'reason':<11} {'quantity':>14} {'return':>9}"
        )
    ]
    for number, t in enumerate(trades, 1):
        lines.append(
            f"{number:>5}  {iso_time(t.entry_time):<20} {t.entry_price!s:>14}  {iso_time(t.exit_time):<20} "
            f"{t.exit_price!s:>14}  {t.exit_reason.value:<11} {t.quantity!s:>14} {float(t.return_pct):>8.3f}%"
        )
    if len(trades) < len(result.trades):
        lines.append(f"... {len(result.trades) - len(trades)} more (use --trades all or --json)")
    return "\n".join(lines)


def data_label(path: Path) -> str:
    """How the data is named in the summary: a file by its name, a Parquet folder by its last two
    parts (``symbol=BTCUSDT/interval=1m``), since its own name is the same for every symbol."""
    return path.name if path.is_file() else "/".join(path.resolve().parts[-2:])


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        limit = None if args.trades == "all" else int(args.trades)
        balance = None if args.balance is None else Decimal(args.balance)
    except (ValueError, InvalidOperation):
        return _fail("--trades takes a number or 'all', --balance a number")
    try:
        strategy = load_registry(args.strategy_path or os.environ.get("STRATEGY_PATH") or None).get(args.strategy)
    except StrategyLoadError as e:
        return _fail(str(e))
    except KeyError as e:
        return _fail(f"--strategy: {e.args[0]}")
    try:
        symbol, _ = candle_identity(args.data)
        text = " ".join(
            [args.params, *(f"{k}={getattr(args, k.lower())}" for k in BREAKER_KEYS if getattr(args, k.lower()))]
        )
        rest, strategy_params = strategy_run_parameters(text, strategy)
        params, config = parse_run_settings(rest, symbol=symbol, balance=balance)
    except ParameterError as e:
        return _fail("; ".join(f"parameter {name}: {reason}" for name, reason in e.problems))
    except CandleFileError as e:
        return _fail(str(e))

    with tqdm(total=len(STAGES), desc="backtest", unit="stage", delay=1.0, disable=args.quiet, file=sys.stderr) as bar:

        def stage(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)

        bar.set_postfix_str("load", refresh=False)
        try:
            candles = load_candles(args.data)
        except CandleFileError as e:
            return _fail(str(e))
        if candles.empty:
            return _fail(f"{args.data}: no candles")
        result = run_backtest(
            candles, params, config, on_stage=stage, strategy=strategy, strategy_params=strategy_params
        )
        result.summary["data_file"] = data_label(Path(args.data))
        stage("output")
        document = json_bytes(result.to_dict())
        page = render_report(result).encode() if args.report or args.report_dir else b""
        written = []
        if args.json:
            written.append(write_atomic(args.json, document))
        if args.report:
            written.append(write_atomic(args.report, page))
        if args.report_dir:
            html_path, json_path = report_paths(args.report_dir, params, strategy.name, strategy_params)
            written += [write_atomic(json_path, document), write_atomic(html_path, page)]
        bar.update(len(STAGES) - bar.n)

    if not args.quiet:
        if limit != 0:
            print(format_trades(result, limit), file=out)
            print(file=out)
        print(format_summary(result), file=out)
        for path in written:
            print(f"wrote {path}", file=out)
    return 0
