"""Optimiser speed in trials per second on the 130,708-candle file, against a loop of run_backtest.

Usage: ``python bench/bench_optimize.py [--data CSV] [--grid N] [--loop N] [--trials N]``
(``make bench`` runs it). Every row scores parameter sets of the same EMA grid
(EMA_SHORT_PERIOD x EMA_LONG_PERIOD, the other settings the defaults) on data already loaded, in
one run, so all of them see the same machine load:

* ``loop of run_backtest``: the baseline, one backtest after another in this process (full
  summary with the profit block, indicators computed per run), over the first ``--loop`` points;
* ``trials on Dask, 1 worker`` / ``N workers``: the grid through the optimiser's trial path
  (``backtest.optimize.trial.run_trial`` on a LocalCluster: shared indicator columns, no profit
  block, daily returns for PBO), task overhead included, after a warm-up batch per worker;
* ``optimiser (TPE) ... previous``: ``--trials`` trials of a real study as the optimiser ran them
  before (the whole batch asked, then one task per trial, the finished trials copied to SQLite
  with Optuna's ``add_trials`` every 5 s), on 1 and on N workers;
* ``optimiser (TPE) ... now``: the same study as ``backtest.optimize.study.optimise`` runs it
  (each trial sent as soon as it is asked, ``--chunk`` trials per task, each batch written to
  SQLite in one transaction), on the same clusters, alternating with the previous approach
  (``--rounds`` times each, the best round shown); both must give the same trials, which the
  table says;
* ``vectorbt broadcast sweep``: the same grid as one 2-D ``Portfolio.from_signals`` per chunk of
  40 combinations in vectorbt's own venv (``bench/vendor_envs/vectorbt_run.py --sweep``, its own
  EWM indicators, one process), after a warm-up; "unavailable: <reason>" when the venv cannot be made.

freqtrade's hyperopt on the same candles and strategy is quoted, not rerun: 20 epochs in 315 s
with 2 jobs (0.064 epochs/s). Nothing is asserted; the table is printed and saved to
``bench/results/bench_optimize.json``.
"""

from __future__ import annotations

import argparse
import itertools
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
from distributed import as_completed

from backtest import run_backtest
from backtest.optimize.data import data_token, load_data
from backtest.optimize.objectives import Constraints, Objective
from backtest.optimize.scheduler import DEFAULT_CHUNK, TrialPool, trial_pool
from backtest.optimize.space import parse_space
from backtest.optimize.study import Search, Studies, finished, open_study, optimise, tell
from backtest.optimize.trial import Job, run_trial, run_trials
from bench.bench_backtest import VECTORBT_SCRIPT, vectorbt_python
from shared.candles import shared_data_dir
from shared.parameters import StrategyParameters

FREQTRADE_EPOCHS_PER_S = 20 / 315


def grid(size: int) -> list[dict[str, Any]]:
    points = [
        {"EMA_SHORT_PERIOD": s, "EMA_LONG_PERIOD": long}
        for s, long in itertools.product(range(4, 20), range(21, 101, 4))
    ]
    return points[:size]


def loop_rate(frame: Any, points: list[dict[str, Any]]) -> float:
    run_backtest(frame, StrategyParameters())  # numba compiled or loaded from cache
    started = time.perf_counter()
    for values in points:
        run_backtest(frame, StrategyParameters(**values))
    return len(points) / (time.perf_counter() - started)


def pool_rate(data: dict[str, Any], points: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    with trial_pool(data, data_token(data), Job("ema_cross_rsi"), workers=workers) as pool:
        pool.run([(f"warm-{i}", points[i], None) for i in range(workers * 2)])
        started = time.perf_counter()
        results = pool.run([(f"grid-{i}", values, None) for i, values in enumerate(points)])
        elapsed = time.perf_counter() - started
    return len(points) / elapsed, len({r["worker"] for r in results})


def warm(pool: TrialPool, points: list[dict[str, Any]]) -> None:
    """Every worker computes every indicator column of ``points`` once (shared by all later rows)."""
    for worker in pool.workers():
        items = [(p, None) for p in points]
        future = pool.client.submit(run_trials, pool.data, pool.token, pool.job, items, workers=[worker], pure=False)
        future.result()


def previous_run(pool: TrialPool, batch: list[tuple[str, dict[str, Any], Any]]) -> list[dict[str, Any]]:
    """The pool as it ran a batch before: one task per trial, then a gather."""
    futures = [
        pool.client.submit(run_trial, pool.data, pool.token, pool.job, v, span, key=f"{k}-{pool.run_id}", pure=False)
        for k, v, span in batch
    ]
    for _ in as_completed(futures):
        pass
    results: list[dict[str, Any]] = pool.client.gather(futures)
    return results


def previous_optimise(studies: Studies, pool: TrialPool, search: Search) -> None:
    """The study loop as it was: ask the batch, then run it; Optuna's add_trials every 5 s."""
    study, stored = studies.memory, studies.stored
    flushed, done = time.monotonic(), finished(study)

    def flush() -> None:
        stored.add_trials(study.get_trials(deepcopy=False)[len(stored.get_trials(deepcopy=False)) :])

    while done < search.trials:
        asked = [study.ask() for _ in range(min(search.batch, search.trials - done))]
        batch = [(f"{study.study_name}-{t.number}", {d.name: d.suggest(t) for d in search.space}, None) for t in asked]
        for trial, result in zip(asked, previous_run(pool, batch), strict=True):
            tell(study, trial, result, search)
        if time.monotonic() - flushed >= 5.0:
            flush()
            flushed = time.monotonic()
        done += len(asked)
    flush()


def scored(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    """What a trial was asked and scored (which worker ran it may differ between runs)."""
    return trial.params, trial.values, {k: v for k, v in trial.user_attrs.items() if k != "worker"}


def study_rates(data: dict[str, Any], args: argparse.Namespace, workers: int) -> tuple[float, float, bool]:
    """Trials/s of the previous and the current study loop (best of ``args.rounds``), and whether
    both asked the same trials and scored them the same."""
    space = parse_space("EMA_SHORT_PERIOD=4:19 EMA_LONG_PERIOD=21:100", StrategyParameters)
    search = Search(space, [Objective.SHARPE], Constraints(0), args.trials, batch=16)
    rates: dict[str, list[float]] = {"previous": [], "now": []}
    histories: dict[str, list[Any]] = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        trial_pool(data, data_token(data), Job("ema_cross_rsi"), workers=workers, chunk=args.chunk) as pool,
    ):
        warm(pool, [{"EMA_SHORT_PERIOD": 4 + i % 16, "EMA_LONG_PERIOD": 21 + i} for i in range(80)])
        for index, (name, loop) in enumerate([("previous", previous_optimise), ("now", optimise)] * args.rounds):
            studies = open_study(f"bench-{index}", f"sqlite:///{folder}/bench.db", search.objectives, 0)
            started = time.perf_counter()
            loop(studies, pool, search)
            rates[name].append(args.trials / (time.perf_counter() - started))
            stored = optuna.load_study(study_name=f"bench-{index}", storage=f"sqlite:///{folder}/bench.db")
            scored = [
                (t.params, t.values, {k: v for k, v in t.user_attrs.items() if k != "worker"}) for t in stored.trials
            ]
            histories.setdefault(name, scored)
    return max(rates["previous"]), max(rates["now"]), histories["previous"] == histories["now"]


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz")
    parser.add_argument("--grid", type=int, default=160, help="grid points per Dask row (default 160)")
    parser.add_argument("--loop", type=int, default=20, help="grid points of the run_backtest loop (default 20)")
    parser.add_argument("--trials", type=int, default=160, help="trials of the TPE study rows (default 160)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="trials per Dask task of the study rows")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each study loop, alternating (default 2)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(args.data, [], None)
    frame = next(iter(data.values()))
    points = grid(args.grid)
    rows: list[tuple[str, float, str]] = []
    baseline = loop_rate(frame, points[: args.loop])
    rows.append(("loop of run_backtest (1 process)", baseline, f"{args.loop} grid points"))
    rate, used = pool_rate(data, points, 1)
    rows.append(("trials on Dask, 1 worker", rate, f"{len(points)} grid points, {used} worker ran them"))
    rate, used = pool_rate(data, points, args.workers)
    rows.append(
        (f"trials on Dask, {args.workers} workers", rate, f"{len(points)} grid points, {used} workers ran them")
    )
    for workers in sorted({1, args.workers}):
        before, now, same = study_rates(data, args, workers)
        label = f"optimiser (TPE), {workers} worker{'s' if workers > 1 else ''}"
        note = f"{args.trials} trials, batch 16, SQLite"
        rows.append((f"{label}, previous loop", before, f"{note}; add_trials every 5 s, a task per trial"))
        rows.append(
            (f"{label}, now", now, f"{note}; {args.chunk} trials per task; same trials: {'yes' if same else 'NO'}")
        )
    vbt_rate, vbt_note = vectorbt_rate(args.data, points)
    if vbt_rate is not None:
        rows.append(("vectorbt broadcast sweep", vbt_rate, vbt_note))
    else:
        print(f"vectorbt: {vbt_note}")
    rows.append(("freqtrade hyperopt, 2 jobs (quoted)", FREQTRADE_EPOCHS_PER_S, "20 epochs in 315 s, not rerun"))
    load = os.getloadavg()
    print(
        f"{len(frame):,} candles of {args.data.name}; {cpu_name()}, {os.cpu_count()} cores, load average {load[0]:.1f}"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'row':<{width}}  {'trials/s':>9}  {'x loop':>7}  note")
    for name, rate, note in rows:
        print(f"{name:<{width}}  {rate:>9.2f}  {rate / baseline:>7.2f}  {note}")
    out = REPO / "bench" / "results" / "bench_optimize.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"candles": len(frame), "load": load, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
