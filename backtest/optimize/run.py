"""A whole optimisation: the study on all the data, the walk-forward studies, and the figures.

``run_plan`` returns the JSON document (``best.params``, its metrics, the defaults, the
walk-forward table and stitched out-of-sample result, PBO and deflated Sharpe with a verdict,
parameter importance) and the curves the HTML report draws.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna
import pandas as pd

from backtest.metrics import iso_time
from backtest.optimize import overfitting, walkforward
from backtest.optimize.objectives import Metrics
from backtest.optimize.scheduler import DEFAULT_CHUNK, TrialPool, trial_pool
from backtest.optimize.study import (
    LEARNING,
    Search,
    Studies,
    best_trial,
    default_sampler,
    feasible,
    open_study,
    optimise,
)
from backtest.optimize.trial import Job, backtest, score, settings_text, time_slice
from backtest.optimize.verdict import verdict
from shared.strategy_loader import load_registry

Progress = Callable[[optuna.Study, int], None]
GRID_CHUNK = 8


@dataclass(frozen=True)
class Plan:
    """Everything the command line decided."""

    data: dict[str, pd.DataFrame]
    token: str
    job: Job
    search: Search
    study: str
    storage: str
    seed: int = 0
    walk_forward: int = 0
    mode: walkforward.WindowMode = walkforward.WindowMode.ROLLING
    train_ratio: int = 3
    address: str | None = None
    workers: int | None = None
    blocks: int = 16


@dataclass
class Outcome:
    """The JSON document and the daily curves of the report."""

    document: dict[str, Any]
    curves: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    days: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))


def _evaluate(plan: Plan, values: dict[str, Any], span: tuple[int, int] | None) -> dict[str, Any]:
    """One run in this process (defaults, a walk-forward test window), with the full summary."""
    strategy = load_registry(plan.job.strategy_path).get(plan.job.strategy)
    text = settings_text(plan.job.fixed, values)
    results = [backtest(strategy, text, s, time_slice(f, span)) for s, f in plan.data.items()]
    return score(results)


def _curve(returns: list[float], balance: float) -> npt.NDArray[np.float64]:
    return np.asarray(balance * np.cumprod(1.0 + np.asarray(returns, dtype=np.float64)), dtype=np.float64)


def trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "params": trial.params,
        "values": trial.values,
        "metrics": trial.user_attrs.get("metrics"),
        "worker": trial.user_attrs.get("worker"),
    }


def overfitting_figures(study: optuna.Study, best: optuna.trial.FrozenTrial | None, blocks: int) -> dict[str, Any]:
    """PBO over every complete trial's daily returns and the deflated Sharpe ratio of ``best``."""
    complete = [t for t in study.get_trials(deepcopy=False) if "returns" in t.user_attrs]
    if best is None or len(complete) < 2:
        return {"pbo": None, "deflated_sharpe": None, "trials": len(complete), "blocks": None}
    days = min(len(t.user_attrs["returns"]) for t in complete)
    matrix = np.array([t.user_attrs["returns"][:days] for t in complete]).T
    usable = min(blocks, days - days % 2)
    pbo = overfitting.probability_of_overfitting(matrix, usable) if usable >= 2 else None
    dsr = overfitting.deflated_sharpe_of(np.asarray(best.user_attrs["returns"][:days]), matrix) if days > 1 else None
    return {
        "pbo": None if pbo is None else pbo.pbo,
        "blocks": usable if pbo is not None else None,
        "splits": None if pbo is None else len(pbo.logits),
        "deflated_sharpe": dsr,
        "trials": len(complete),
        "days": days,
    }


def importance(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importance (PED-ANOVA: which parameters set the best trials apart;
    the Pareto front's trials with several objectives); {} while too few trials differ."""
    if len(feasible(study)) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):
        return {}
    return {name: float(value) for name, value in found.items()}


def _study_block(study: optuna.Study, best: optuna.trial.FrozenTrial | None) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    return {
        "name": study.study_name,
        "trials": len(trials),
        "states": dict(states),
        "feasible": len(feasible(study)),
        "workers": dict(Counter(t.user_attrs.get("worker", "") for t in trials if t.user_attrs.get("worker"))),
        "best": None if best is None else trial_row(best),
    }


def _walk_forward(plan: Plan, pool: TrialPool, progress: Progress | None) -> dict[str, Any]:
    frame = next(iter(plan.data.values()))
    times = frame["open_time"].to_numpy()
    balance = 10_000.0
    rows, curves = [], []
    for w in walkforward.windows(len(frame), plan.walk_forward, train_ratio=plan.train_ratio, mode=plan.mode):
        end = int(times[w.test_end - 1]) + 1
        train, test = (int(times[w.train_start]), int(times[w.train_end])), (int(times[w.test_start]), end)
        studies = _open(plan, f"{plan.study}.wf{w.index}", plan.seed + w.index + 1)
        optimise(studies, pool, replace(plan.search, span=train), progress)
        best = best_trial(studies.memory)
        row: dict[str, Any] = {
            "window": w.index,
            "train": [iso_time(train[0]), iso_time(int(times[w.train_end - 1]))],
            "test": [iso_time(test[0]), iso_time(int(times[w.test_end - 1]))],
            "params": None if best is None else best.params,
            "in_sample": None if best is None else best.user_attrs["metrics"],
        }
        if best is not None:
            outside = _evaluate(plan, best.params, test)
            row["out_of_sample"] = outside["metrics"]
            curves.append(_curve(outside["returns"], balance))
        rows.append(row)
    stitched = walkforward.stitch(curves, balance)
    returns = np.diff(np.concatenate(([balance], stitched))) / np.concatenate(([balance], stitched[:-1]))
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    return {
        "windows": rows,
        "mode": plan.mode.value,
        "train_ratio": plan.train_ratio,
        "stitched_return_pct": (float(stitched[-1]) / balance - 1.0) * 100.0 if len(stitched) else None,
        "stitched_sharpe": float(returns.mean()) / spread * math.sqrt(365) if spread > 0 else None,
        "stitched_curve": [float(x) for x in stitched],
    }


def _open(plan: Plan, name: str, seed: int) -> Studies:
    return open_study(name, plan.storage, plan.search.objectives, seed, plan.search.sampler, plan.search.space)


def sampler_of(search: Search) -> str:
    return search.sampler or default_sampler(search.objectives)


def chunk_of(search: Search) -> int:
    """Trials per Dask task: two while a learning sampler asks them one by one, so that every
    worker gets some of each batch; more when the whole batch is asked at once (grid, random),
    for fewer round trips through the scheduler."""
    return DEFAULT_CHUNK if sampler_of(search) in LEARNING else GRID_CHUNK


def run_plan(plan: Plan, progress: Progress | None = None) -> Outcome:
    """Optimise on all the data, then walk forward when asked; see the module docstring."""
    chunk = chunk_of(plan.search)
    with trial_pool(plan.data, plan.token, plan.job, address=plan.address, workers=plan.workers, chunk=chunk) as pool:
        workers = pool.workers()
        studies = _open(plan, plan.study, plan.seed)
        optimise(studies, pool, plan.search, progress)
        study, stored = studies.memory, studies.stored
        best = best_trial(study)
        walk = _walk_forward(plan, pool, progress) if plan.walk_forward else None
    defaults = _evaluate(plan, {}, None)
    # The trials are scored by the integer fast path; the best one's ledger is re-run by the
    # Decimal backtester, whose figures are the reported ones.
    checked = None if best is None else _evaluate(plan, best.params, None)
    figures = overfitting_figures(study, best, plan.blocks)
    frame = next(iter(plan.data.values()))
    document: dict[str, Any] = {
        "study": _study_block(study, best),
        "strategy": plan.job.strategy,
        "symbols": list(plan.data),
        "interval": frame.attrs.get("interval"),
        "candles": {s: len(f) for s, f in plan.data.items()},
        "period": [iso_time(int(frame["open_time"].iloc[0])), iso_time(int(frame["open_time"].iloc[-1]))],
        "objectives": [o.value for o in plan.search.objectives],
        "space": [d.__dict__ for d in plan.search.space],
        "fixed": plan.job.fixed,
        "seed": plan.seed,
        "sampler": sampler_of(plan.search),
        "batch": plan.search.batch,
        "cluster_workers": workers,
        "best": None
        if best is None or checked is None
        else {
            "params": best.params,
            "metrics": checked["metrics"],
            "decimal_rerun_agrees": checked["metrics"] == best.user_attrs["metrics"],
        },
        "defaults": defaults["metrics"],
        "overfitting": figures,
        "walk_forward": walk,
        "importance": importance(study),
        "history": [trial_row(t) for t in study.get_trials(deepcopy=False)],
    }
    document["verdict"] = verdict(document)
    # The study's own summary, for whoever lists the studies of a storage later.
    stored.set_user_attr(
        "summary",
        {
            "verdict": document["verdict"],
            "overfitting": {k: figures.get(k) for k in ("pbo", "deflated_sharpe", "trials")},
            "best": document["best"],
            "defaults": document["defaults"],
            "walk_forward_return_pct": None if walk is None else walk["stitched_return_pct"],
            "strategy": plan.job.strategy,
            "sampler": document["sampler"],
            "symbols": list(plan.data),
            "interval": frame.attrs.get("interval"),
            "period": document["period"],
        },
    )
    curves = {"defaults": _curve(defaults["returns"], 10_000.0)}
    if best is not None:
        curves["best"] = _curve(checked["returns"] if checked else best.user_attrs["returns"], 10_000.0)
    closes = [f.groupby(f["open_time"] // 86_400_000)["close"].last().to_numpy() for f in plan.data.values()]
    days = min(len(c) for c in closes)
    curves["buy_and_hold"] = 10_000.0 * np.mean([c[:days] / c[0] for c in closes], axis=0)
    return Outcome(document, curves)


__all__ = ["Metrics", "Outcome", "Plan", "run_plan"]
