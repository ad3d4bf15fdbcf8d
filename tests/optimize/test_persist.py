"""Trials written in one transaction read back as Optuna's own ``add_trials`` writes them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from backtest.optimize.persist import finished_trials, write_trials
from backtest.optimize.study import open_storage


def fields(trial: FrozenTrial) -> tuple[Any, ...]:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.params,
        trial.distributions,
        trial.user_attrs,
        trial.system_attrs,
        trial.intermediate_values,
        trial.datetime_start,
        trial.datetime_complete,
    )


def memory_study(directions: list[Any]) -> optuna.Study:
    """Trials of every kind the optimiser stores: complete (an infinite value too), failed, constrained."""
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=1))
    for index in range(12):
        trial = study.ask()
        short = trial.suggest_int("EMA_SHORT_PERIOD", 2, 30)
        trial.suggest_float("STOP_LOSS_PERCENTAGE", 0.005, 0.03, step=0.0005)
        trial.suggest_float("RISK", 1e-4, 1e-1, log=True)
        trial.suggest_categorical("USE_EMA_FILTER", [True, False])
        trial.set_user_attr("worker", "tcp://127.0.0.1:1234")
        if index % 5 == 4:
            trial.set_user_attr("problems", [["EMA_SHORT_PERIOD", "must be below EMA_LONG_PERIOD"]])
            study.tell(trial, state=TrialState.FAIL)
            continue
        trial.set_user_attr("metrics", {"sharpe": short / 7, "trades": index})
        trial.set_user_attr("returns", [0.1 / (i + 1) - 0.02 for i in range(30)])
        trial.set_user_attr("constraints", (float(index % 3), 0.0))
        trial.set_constraint("min_trades", float(index % 3))
        trial.set_constraint("max_drawdown", 0.0)
        if len(directions) == 1:
            trial.report(0.5, step=1)
        value = math.inf if index == 7 else short / 7
        study.tell(trial, [value, -value][: len(directions)])
    return study


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "maximize"]])
def test_one_transaction_reads_back_as_add_trials_writes(tmp_path: Path, directions: list[Any]) -> None:
    memory = memory_study(directions)
    trials = memory.get_trials(deepcopy=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    ours = optuna.create_study(study_name="ours", storage=open_storage(url), directions=directions)
    theirs = optuna.create_study(study_name="theirs", storage=url, directions=directions)
    write_trials(open_storage(url), ours._study_id, trials[:5])
    write_trials(open_storage(url), ours._study_id, trials[5:])  # a second batch follows the first
    theirs.add_trials(trials)
    read = optuna.load_study(study_name="ours", storage=url).trials
    expected = optuna.load_study(study_name="theirs", storage=url).trials
    assert [fields(t) for t in read] == [fields(t) for t in expected]
    assert [(t.number, t.params, t.values) for t in read] == [(t.number, t.params, t.values) for t in trials]
    assert {t.state for t in read} == {TrialState.COMPLETE, TrialState.FAIL}


def test_trials_follow_those_the_memory_study_lacks(tmp_path: Path) -> None:
    # A stored trial left unfinished by another client keeps its number; ours come after it.
    url = f"sqlite:///{tmp_path / 's.db'}"
    stored = optuna.create_study(study_name="s", storage=url, direction="maximize")
    stored.ask()
    trials = memory_study(["maximize"]).get_trials(deepcopy=False)
    write_trials(open_storage(url), stored._study_id, trials, shift=1)
    numbers = [t.number for t in optuna.load_study(study_name="s", storage=url).trials]
    assert numbers == list(range(len(trials) + 1))


def test_finished_trials_count_the_study_and_its_folds_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = sqlalchemy.create_engine(url)
    assert finished_trials(engine, "ema_cross_rsi-BTCUSDT") == 0  # nothing created yet
    trials = memory_study(["maximize"]).get_trials(deepcopy=False)
    for name, count in [
        ("ema_cross_rsi-BTCUSDT", 5),
        ("ema_cross_rsi-BTCUSDT.wf0", 3),
        ("emaXcross_rsi-BTCUSDT.wf0", 4),
    ]:
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        write_trials(open_storage(url), study._study_id, trials[:count])
    running = optuna.load_study(study_name="ema_cross_rsi-BTCUSDT", storage=url)
    running.ask()  # not finished: not counted
    assert finished_trials(engine, "ema_cross_rsi-BTCUSDT") == 8
