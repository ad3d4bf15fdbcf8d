"""Optimiser speed in trials per second on the 130,708-candle file, against a loop of run_backtest.

Usage: ``python bench/bench_optimize.py [--data CSV] [--loop N] [--trials N] [--rounds N]``
(``make bench`` runs it). Every row scores parameter sets of one EMA grid, EMA_SHORT_PERIOD
4..19 x EMA_LONG_PERIOD 21..97 step 4 (320 points, the other settings the defaults), on data
already loaded, in one run, so all of them see the same machine load:

* ``loop of run_backtest``: the baseline, one backtest after another in this process (full
  summary with the profit block, indicators computed per run), over the first ``--loop`` points;
* ``optimiser, grid sampler``: the whole grid as ``python -m backtest.optimize --sampler grid``
  runs it (``backtest.optimize.study.optimise`` with the grid sampler, its batch and trials per
  task, each batch written to SQLite), on a LocalCluster of 1 and of N workers; the table says
  whether every point was tried once and both clusters stored the same scores;
* ``optimiser, TPE``: ``--trials`` trials of a TPE study (batch 16) on the same clusters; the
  table says whether both stored the same trials;
* ``vectorbt broadcast sweep``: the same 320 combinations as one 2-D ``Portfolio.from_signals``
  per chunk of 40 in vectorbt's own venv (``bench/vendor_envs/vectorbt_run.py --sweep``, its own
  EWM indicators, one process), after a warm-up; "unavailable: <reason>" when the venv cannot be made.

The optimiser rows time the study loop, from the first trial asked to the last batch written,
on workers that have computed the grid's indicator columns once (as vectorbt's warm-up
compiles its kernels); starting the LocalCluster (a few seconds) is not in them. Each study
row is the best of ``--rounds`` runs. freqtrade's hyperopt on the same candles and strategy is
quoted, not rerun: 20 epochs in 315 s with 2 jobs (0.064 epochs/s). Nothing is asserted; the
table is printed and saved to ``bench/results/bench_optimize.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import optuna

from backtest import run_backtest
from backtest.optimize.data import data_token, load_data
from backtest.optimize.objectives import Constraints, Objective
from backtest.optimize.run import chunk_of
from backtest.optimize.scheduler import TrialPool, trial_pool
from backtest.optimize.space import grid_points, parse_space
from backtest.optimize.study import Search, open_study, optimise
from backtest.optimize.trial import Job, run_trials
from bench.bench_backtest import VECTORBT_SCRIPT, vectorbt_python
from shared.candles import shared_data_dir
from shared.parameters import StrategyParameters

FREQTRADE_EPOCHS_PER_S = 20 / 315
SPACE = "EMA_SHORT_PERIOD=4:19 EMA_LONG_PERIOD=21:97:4"
JOB = Job("ema_cross_rsi")


def loop_rate(frame: Any, points: list[dict[str, Any]]) -> float:
    run_backtest(frame, StrategyParameters())  # numba compiled or loaded from cache
    started = time.perf_counter()
    for values in points:
        run_backtest(frame, StrategyParameters(**values))
    return len(points) / (time.perf_counter() - started)


def warm(pool: TrialPool, points: list[dict[str, Any]]) -> None:
    """Every worker computes every indicator column of ``points`` once (shared by all later rows)."""
    for worker in pool.workers():
        items = [(p, None) for p in points]
        future = pool.client.submit(run_trials, pool.data, pool.token, pool.job, items, workers=[worker], pure=False)
        future.result()


def scored(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    """What a trial was asked and scored (which worker ran it may differ between runs)."""
    return trial.params, trial.values, {k: v for k, v in trial.user_attrs.items() if k != "worker"}


def study_rates(
    data: dict[str, Any], searches: dict[str, Search], workers: int, rounds: int
) -> dict[str, tuple[float, list[Any]]]:
    """Best trials/s of each search over ``rounds`` (alternating) on one warmed LocalCluster of
    ``workers``, and the trials the first round stored."""
    points = grid_points(next(iter(searches.values())).space)
    found: dict[str, tuple[float, list[Any]]] = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        trial_pool(data, data_token(data), JOB, workers=workers) as pool,
    ):
        warm(pool, points)
        storage = f"sqlite:///{folder}/bench.db"
        for index, (name, search) in enumerate(list(searches.items()) * rounds):
            pool.chunk = chunk_of(search)
            studies = open_study(f"bench-{index}", storage, search.objectives, 0, search.sampler, search.space)
            started = time.perf_counter()
            optimise(studies, pool, search)
            rate = search.trials / (time.perf_counter() - started)
            if name not in found:
                trials = optuna.load_study(study_name=f"bench-{index}", storage=storage).trials
                found[name] = (rate, [scored(t) for t in trials])
            else:
                found[name] = (max(rate, found[name][0]), found[name][1])
    return found


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def vectorbt_rate(path: Path, points: list[dict[str, Any]]) -> tuple[float | None, str]:
    try:
        python = vectorbt_python()
    except RuntimeError as e:
        return None, f"unavailable: {e}"
    settings = {**StrategyParameters().model_dump(mode="json"), "FEE": 0.001, "BALANCE": 10000}
    pairs = [[p["EMA_SHORT_PERIOD"], p["EMA_LONG_PERIOD"]] for p in points]
    command = [str(python), str(VECTORBT_SCRIPT), "--data", str(path), "--params", json.dumps(settings)]
    done = subprocess.run([*command, "--sweep", json.dumps(pairs)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return None, f"unavailable: {lines[-1] if lines else done.returncode}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    note = f"vectorbt {answer['version']}, {answer['combos']} combos, {answer['trades']} trades, 1 process"
    return answer["combos"] / answer["seconds"], note


def optimiser_rows(
    data: dict[str, Any], args: argparse.Namespace, points: list[dict[str, Any]]
) -> list[tuple[str, float, str]]:
    space = parse_space(SPACE, StrategyParameters)
    sharpe, constraints = [Objective.SHARPE], Constraints(0)
    searches = {
        "grid": Search(space, sharpe, constraints, len(points), batch=64, sampler="grid"),
        "tpe": Search(space, sharpe, constraints, args.trials, batch=16, sampler="tpe"),
    }
    runs = {w: study_rates(data, searches, w, args.rounds) for w in sorted({1, args.workers})}
    one, many = runs[1], runs[max(runs)]
    tried = [trial[0] for trial in one["grid"][1]]
    once = sorted(tried, key=str) == sorted(points, key=str)
    rows = []
    for name, label, note in [
        ("grid", "grid sampler", f"{len(points)} points, batch 64, {chunk_of(searches['grid'])} trials per task"),
        ("tpe", "TPE", f"{args.trials} trials, batch 16, {chunk_of(searches['tpe'])} trials per task"),
    ]:
        same = "yes" if one[name][1] == many[name][1] else "NO"
        for workers, found in runs.items():
            extra = f"; every point once: {'yes' if once else 'NO'}" if name == "grid" and workers == 1 else ""
            extra += f"; same trials as 1 worker: {same}" if workers > 1 else ""
            plural = "s" if workers > 1 else ""
            rows.append((f"optimiser, {label}, {workers} worker{plural}", found[name][0], f"{note}, SQLite{extra}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz")
    parser.add_argument("--loop", type=int, default=20, help="grid points of the run_backtest loop (default 20)")
    parser.add_argument("--trials", type=int, default=320, help="trials of the TPE study rows (default 320)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each study, alternating (default 2)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started_load = os.getloadavg()
    data = load_data(args.data, [], None)
    frame = next(iter(data.values()))
    points = grid_points(parse_space(SPACE, StrategyParameters))
    rows: list[tuple[str, float, str]] = []
    baseline = loop_rate(frame, points[: args.loop])
    rows.append(("loop of run_backtest (1 process)", baseline, f"first {args.loop} grid points"))
    rows += optimiser_rows(data, args, points)
    vbt_rate, vbt_note = vectorbt_rate(args.data, points)
    if vbt_rate is not None:
        rows.append(("vectorbt broadcast sweep", vbt_rate, vbt_note))
    else:
        print(f"vectorbt: {vbt_note}")
    rows.append(("freqtrade hyperopt, 2 jobs (quoted)", FREQTRADE_EPOCHS_PER_S, "20 epochs in 315 s, not rerun"))
    load = os.getloadavg()
    print(
        f"{len(frame):,} candles of {args.data.name}; {cpu_name()}, {os.cpu_count()} cores, "
        f"load average {started_load[0]:.1f} at the start, {load[0]:.1f} at the end"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'row':<{width}}  {'trials/s':>9}  {'x loop':>7}  note")
    for name, rate, note in rows:
        print(f"{name:<{width}}  {rate:>9.2f}  {rate / baseline:>7.2f}  {note}")
    out = REPO / "bench" / "results" / "bench_optimize.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {"candles": len(frame), "load": {"start": started_load, "end": load}, "rows": rows}
    out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
