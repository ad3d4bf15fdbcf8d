"""Command line of the optimiser:
``python -m backtest.optimize --data FILE --space "NAME[=LOW:HIGH[:STEP]] ..." [--objective sharpe] [--trials 100]
[--sampler tpe|random|grid|nsga2] ...``.

Exit status 0 on success, 2 on a bad argument, parameter or data file (nothing runs then).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import optuna
from tqdm import tqdm

from backtest.config import parse_run_settings, strategy_run_parameters
from backtest.optimize.data import data_token, load_data
from backtest.optimize.objectives import Constraints, Objective
from backtest.optimize.report import REPORT_DIR, render_study_report, report_files
from backtest.optimize.run import Outcome, Plan, run_plan
from backtest.optimize.scheduler import scheduler_address
from backtest.optimize.space import grid_size, parse_space
from backtest.optimize.study import LEARNING, SAMPLERS, Search, default_sampler, storage_url
from backtest.optimize.trial import Job
from backtest.optimize.walkforward import WindowMode
from backtest.storage import json_bytes, write_atomic
from shared.candles import CandleFileError
from shared.parameters import ParameterError
from shared.strategy_loader import StrategyLoadError, load_registry
from shared.trading.strategies import DEFAULT_STRATEGY


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backtest.optimize", description="Optimise a strategy's parameters.")
    p.add_argument("--data", required=True, help="candle file or series folder, or a folder of several with --symbols")
    p.add_argument("--symbols", default="", help="comma-separated symbols to trade side by side (from a --data folder)")
    p.add_argument("--timeframe", default=None, help="candle interval of the --data folder's series (default 1m)")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, help=f"strategy name (default {DEFAULT_STRATEGY})")
    p.add_argument("--strategy-path", default=None, help="folder of user strategies (default $STRATEGY_PATH)")
    p.add_argument(
        "--space",
        required=True,
        help='the parameters to search: "NAME" (bounds from the model) or "NAME=LOW:HIGH[:STEP]", '
        "space-separated; risk settings such as STOP_LOSS_PERCENTAGE too",
    )
    p.add_argument("--params", default="", help="fixed KEY=VALUE settings of every trial (as python -m backtest)")
    p.add_argument("--objective", default="sharpe", help=f"one or more of {', '.join(Objective)}, comma-separated")
    p.add_argument("--min-trades", type=int, default=10, help="a trial with fewer trades is infeasible (default 10)")
    p.add_argument("--max-drawdown", type=float, default=None, help="infeasible beyond this drawdown, percent")
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="tpe (default for one objective), nsga2 (default for several), random, or grid: every point "
        "of --space once (integers every STEP, default 1; booleans both; floats need a STEP)",
    )
    p.add_argument("--trials", type=int, default=None, help="trials per study (default 100; grid: the whole grid)")
    p.add_argument("--timeout", type=float, default=None, help="stop starting batches after this many seconds")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0): same seed, same study")
    p.add_argument(
        "--batch", type=int, default=None, help="trials asked and run together (default 16; grid and random: 64)"
    )
    p.add_argument("--walk-forward", type=int, default=0, metavar="K", help="K train/test windows (default none)")
    p.add_argument("--walk-forward-mode", choices=[m.value for m in WindowMode], default=WindowMode.ROLLING.value)
    p.add_argument("--train-ratio", type=int, default=3, help="train window length in test windows (default 3)")
    p.add_argument("--pbo-blocks", type=int, default=16, help="CSCV blocks of the PBO (even, default 16)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default $DASK_SCHEDULER_ADDRESS)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default var/optimize/studies.sqlite3)")
    p.add_argument("--study", default=None, help="study name (default strategy-symbols-interval-objectives-seed)")
    p.add_argument("--json", type=Path, help="write the result document here")
    p.add_argument("--report", type=Path, help="write the HTML report here")
    p.add_argument(
        "--report-dir",
        type=Path,
        default=REPORT_DIR,
        help=f"also write <study>.json and <study>.html here, where the dashboard lists studies (default {REPORT_DIR})",
    )
    p.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        help="keep {done, total, best} of the run here as JSON, rewritten after each batch (for the dashboard)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0..19",
        help="lower this process's CPU priority (and its LocalCluster workers') by this much (os.nice)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _plan(args: argparse.Namespace) -> Plan:
    """Everything checked before anything runs; raises ParameterError, CandleFileError or ValueError."""
    strategy = load_registry(args.strategy_path).get(args.strategy)
    objectives = [Objective(o.strip()) for o in args.objective.split(",") if o.strip()]
    if not objectives:
        raise ValueError("--objective: name at least one")
    space = parse_space(args.space, strategy.Parameters)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    data = load_data(args.data, symbols, args.timeframe)
    for symbol in data:  # the fixed settings are validated now, not in every trial
        rest, _ = strategy_run_parameters(args.params, strategy)
        parse_run_settings(rest, symbol=symbol)
    sampler = args.sampler or default_sampler(objectives)
    trials = 100 if args.trials is None else args.trials
    if sampler == "grid":  # the whole grid by default, and never a point twice
        size = grid_size(space)
        trials = size if args.trials is None else min(args.trials, size)
    batch = args.batch or (16 if sampler in LEARNING else 64)
    if trials < 1 or batch < 1:
        raise ValueError("--trials and --batch must be at least 1")
    interval = next(iter(data.values())).attrs.get("interval")
    # The default sampler keeps the name it always had; another one is a study of its own.
    named = "" if sampler == default_sampler(objectives) else f"-{sampler}"
    name = args.study or f"{strategy.name}-{'+'.join(data)}-{interval}-{'+'.join(objectives)}-s{args.seed}{named}"
    return Plan(
        data=data,
        token=data_token(data),
        job=Job(strategy.name, args.strategy_path, args.params),
        search=Search(
            space,
            objectives,
            Constraints(args.min_trades, args.max_drawdown),
            trials,
            batch,
            args.timeout,
            sampler=sampler,
        ),
        study=name,
        storage=storage_url(args.storage),
        seed=args.seed,
        walk_forward=args.walk_forward,
        mode=WindowMode(args.walk_forward_mode),
        train_ratio=args.train_ratio,
        address=scheduler_address(args.scheduler),
        workers=args.workers,
        blocks=args.pbo_blocks,
    )


def format_outcome(outcome: Outcome) -> str:
    d = outcome.document
    best, figures, walk = d["best"], d["overfitting"], d["walk_forward"]
    study = d["study"]
    lines = [f"study {study['name']} ({d['sampler']}): {study['trials']} trials, {study['feasible']} feasible"]
    if best:
        m = best["metrics"]
        lines.append("best " + " ".join(f"{k}={v}" for k, v in best["params"].items()))
        lines.append(
            f"  sharpe {m['sharpe']:.3f}  return {m['total_return_pct']:.2f} %  "
            f"max drawdown {m['max_drawdown_pct']:.2f} %  trades {m['trades']}"
        )
    lines.append(f"defaults: sharpe {d['defaults']['sharpe']:.3f}  return {d['defaults']['total_return_pct']:.2f} %")
    if figures["pbo"] is not None:
        lines.append(f"PBO {figures['pbo']:.3f} ({figures['splits']} splits of {figures['blocks']} blocks)")
    if figures["deflated_sharpe"] is not None:
        lines.append(f"deflated Sharpe ratio {figures['deflated_sharpe']:.3f} over {figures['trials']} trials")
    if walk:
        lines.append(
            f"walk-forward out-of-sample return {walk['stitched_return_pct']:.2f} % ({len(walk['windows'])} windows)"
        )
    lines.append(f"verdict: {d['verdict']['verdict']} ({'; '.join(d['verdict']['reasons'])})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        plan = _plan(args)
    except ParameterError as e:
        return _fail("; ".join(f"parameter {name}: {reason}" for name, reason in e.problems))
    except (CandleFileError, StrategyLoadError, ValueError) as e:
        return _fail(str(e))
    except KeyError as e:
        return _fail(f"--strategy: {e.args[0]}")
    if args.nice:
        os.nice(args.nice)  # before the LocalCluster starts: its worker processes inherit it
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    total = plan.search.trials * (1 + plan.walk_forward)
    started, count = time.monotonic(), [0]
    with tqdm(total=total, desc="optimise", unit="trial", disable=args.quiet, file=sys.stderr) as bar:

        def progress(study: optuna.Study, done: int) -> None:
            bar.update(done)
            count[0] += done
            if done:  # a trial finished; the best and the file change only once its batch is told (done 0)
                return
            rate = count[0] / max(time.monotonic() - started, 1e-9)
            try:
                best = f"{study.best_trials[0].values[0]:.3f}"
            except (ValueError, IndexError):
                best = "-"
            bar.set_postfix_str(f"{study.study_name} best {best} {rate:.1f} trials/s", refresh=False)
            if args.progress_file:
                state = {"done": count[0], "total": total, "best": None if best == "-" else float(best)}
                write_atomic(args.progress_file, json_bytes(state))

        outcome = run_plan(plan, progress)
    elapsed = time.monotonic() - started
    outcome.document["elapsed_s"] = elapsed
    outcome.document["trials_per_second"] = count[0] / elapsed if elapsed > 0 else None
    written = []
    document, page = json_bytes(outcome.document), render_study_report(outcome).encode()
    if args.json:
        written.append(write_atomic(args.json, document))
    if args.report:
        written.append(write_atomic(args.report, page))
    json_path, html_path = report_files(args.report_dir, plan.study)
    written += [write_atomic(json_path, document), write_atomic(html_path, page)]
    if not args.quiet:
        print(format_outcome(outcome), file=out)
        for path in written:
            print(f"wrote {path}", file=out)
    return 0
