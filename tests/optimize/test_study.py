"""Studies on a real Dask LocalCluster (worker processes) with real Optuna storage and real candles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from distributed import LocalCluster

from backtest.optimize import cli
from backtest.optimize.data import data_token, load_data
from backtest.optimize.objectives import Constraints, Objective
from backtest.optimize.persist import finished_trials
from backtest.optimize.run import Plan, run_plan
from backtest.optimize.scheduler import trial_pool
from backtest.optimize.space import grid_points, parse_space
from backtest.optimize.study import Search, open_study, optimise, tell
from backtest.optimize.trial import Job, backtest, run_trial, score, settings_text
from shared.parameters import StrategyParameters
from shared.trading.strategies import builtin_registry
from tests.optimize.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local.scheduler_address


def plan_for(path: Path, storage: Path, name: str, address: str, space: str, trials: int, **extra: Any) -> Plan:
    data = load_data(path, [], None)
    search = Search(parse_space(space, StrategyParameters), [Objective.SHARPE], Constraints(0), trials, batch=8)
    return Plan(
        data, data_token(data), Job("ema_cross_rsi"), search, name, f"sqlite:///{storage}", address=address, **extra
    )


def history(document: dict[str, Any]) -> list[tuple[dict[str, Any], list[float] | None]]:
    return [(t["params"], t["values"]) for t in document["history"]]


def test_a_seeded_study_is_reproducible(candle_slice: Path, tmp_path: Path, cluster: str) -> None:
    space = "EMA_SHORT_PERIOD=3:20 EMA_LONG_PERIOD=21:60 STOP_LOSS_PERCENTAGE=0.003:0.03"
    first = run_plan(plan_for(candle_slice, tmp_path / "s.db", "a", cluster, space, 24, seed=5)).document
    again = run_plan(plan_for(candle_slice, tmp_path / "s.db", "b", cluster, space, 24, seed=5)).document
    other = run_plan(plan_for(candle_slice, tmp_path / "s.db", "c", cluster, space, 24, seed=6)).document
    assert len(first["history"]) == 24
    assert history(first) == history(again)
    assert history(first) != history(other)
    assert set(first["study"]["workers"]) == set(first["cluster_workers"])  # both workers ran trials
    stored = optuna.load_study(study_name="a", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert [t.params for t in stored.trials] == [p for p, _ in history(first)]


def test_trials_sent_as_asked_are_the_trials_of_a_batch_asked_first(
    candle_slice: Path, tmp_path: Path, cluster: str
) -> None:
    # The loop sends each trial to the workers as soon as it is asked, several per task; the
    # reference asks the whole batch first and scores it here, one trial after another.
    space = "EMA_SHORT_PERIOD=3:20 EMA_LONG_PERIOD=10:60 STOP_LOSS_PERCENTAGE=0.003:0.03"
    plan = plan_for(candle_slice, tmp_path / "o.db", "streamed", cluster, space, 40, seed=2)
    search = plan.search
    with trial_pool(plan.data, plan.token, plan.job, address=cluster, chunk=3) as pool:
        optimise(open_study("streamed", plan.storage, search.objectives, 2), pool, search)
    reference = open_study("reference", plan.storage, search.objectives, 2)
    study = reference.memory
    while len(study.trials) < search.trials:
        asked = [study.ask() for _ in range(search.batch)]
        values = [{d.name: d.suggest(t) for d in search.space} for t in asked]
        for trial, v in zip(asked, values, strict=True):
            tell(study, trial, run_trial(plan.data, plan.token, plan.job, v), search)
    stored = optuna.load_study(study_name="streamed", storage=plan.storage).trials
    assert any(t.state == optuna.trial.TrialState.FAIL for t in stored)  # short >= long: refused
    assert [(t.params, t.values, t.user_attrs.get("returns")) for t in stored] == [
        (t.params, t.values, t.user_attrs.get("returns")) for t in study.trials
    ]


def test_the_grid_sampler_visits_every_point_once_in_a_seeded_order(
    candle_slice: Path, tmp_path: Path, cluster: str
) -> None:
    space = "EMA_SHORT_PERIOD=3:8 EMA_LONG_PERIOD=21:41:10"  # 6 x 3 points
    points = grid_points(parse_space(space, StrategyParameters))

    def run(name: str, seed: int, trials: int = 18) -> list[dict[str, Any]]:
        plan = plan_for(candle_slice, tmp_path / "g.db", name, cluster, space, trials, seed=seed)
        plan = replace(plan, search=replace(plan.search, sampler="grid"))
        document = run_plan(plan).document
        assert document["sampler"] == "grid"
        return [t["params"] for t in document["history"]]

    first, again, other = run("a", 4), run("b", 4), run("c", 5)
    assert sorted(first, key=str) == sorted(points, key=str)  # every point, none twice
    assert first == again and first != other and sorted(other, key=str) == sorted(points, key=str)
    # Resumed from its storage, a grid study goes on with the points it has not tried, in the same order.
    assert run("d", 4, trials=7) == first[:7]
    assert run("d", 4) == first
    stored = optuna.load_study(study_name="d", storage=f"sqlite:///{tmp_path / 'g.db'}").trials
    assert [t.params for t in stored] == first


def test_the_command_line_runs_the_whole_grid_by_default(candle_slice: Path, tmp_path: Path, cluster: str) -> None:
    out = tmp_path / "g.json"
    args = ["--data", str(candle_slice), "--space", "EMA_SHORT_PERIOD=3:8:2 USE_EMA_FILTER", "--sampler", "grid"]
    args += ["--scheduler", cluster, "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--min-trades", "1"]
    assert cli.main([*args, "--json", str(out), "--quiet", "--report-dir", str(tmp_path)]) == 0
    document = json.loads(out.read_text())
    assert document["study"]["name"].endswith("-grid") and document["batch"] == 64
    assert sorted((t["params"]["EMA_SHORT_PERIOD"], t["params"]["USE_EMA_FILTER"]) for t in document["history"]) == [
        (period, flag) for period in (3, 5, 7) for flag in (False, True)
    ]


def test_a_planted_optimum_is_found(candle_slice: Path, tmp_path: Path, cluster: str) -> None:
    # The whole grid is small enough to backtest one by one: its best is the planted answer.
    strategy = builtin_registry().get("ema_cross_rsi")
    data = load_data(candle_slice, [], None)
    grid = {
        period: score([backtest(strategy, settings_text("", {"EMA_SHORT_PERIOD": period}), "BTCUSDT", data["BTCUSDT"])])
        for period in range(2, 10)
    }
    planted = max(grid, key=lambda p: grid[p]["metrics"]["sharpe"])
    outcome = run_plan(plan_for(candle_slice, tmp_path / "p.db", "planted", cluster, "EMA_SHORT_PERIOD=2:9", 40))
    best = outcome.document["best"]
    assert best["params"] == {"EMA_SHORT_PERIOD": planted}
    # The trials' integer fast path scored the best exactly as the Decimal backtester re-running it.
    assert best["metrics"] == grid[planted]["metrics"] and best["decimal_rerun_agrees"] is True


def test_walk_forward_tests_each_window_after_its_training(candle_slice: Path, tmp_path: Path, cluster: str) -> None:
    plan = plan_for(candle_slice, tmp_path / "w.db", "wf", cluster, "EMA_SHORT_PERIOD=2:12", 16, walk_forward=2)
    document = run_plan(plan).document
    walk = document["walk_forward"]
    assert len(walk["windows"]) == 2
    for w in walk["windows"]:
        assert w["train"][1] < w["test"][0]
        assert w["params"] is not None and "out_of_sample" in w
    assert walk["windows"][0]["test"][1] < walk["windows"][1]["test"][0]
    assert len(walk["stitched_curve"]) >= 2 and walk["stitched_return_pct"] is not None
    stored = optuna.get_all_study_names(f"sqlite:///{tmp_path / 'w.db'}")
    assert sorted(stored) == ["wf", "wf.wf0", "wf.wf1"]
    assert document["overfitting"]["pbo"] is not None and document["verdict"]["verdict"]


def test_the_command_line_writes_the_json_and_the_report(candle_slice: Path, tmp_path: Path, cluster: str) -> None:
    out, report = tmp_path / "o.json", tmp_path / "o.html"
    args = ["--data", str(candle_slice), "--space", "EMA_SHORT_PERIOD=3:8 USE_EMA_FILTER", "--trials", "12"]
    args += ["--scheduler", cluster, "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--min-trades", "1"]
    assert cli.main([*args, "--json", str(out), "--report", str(report), "--quiet"]) == 0
    document = json.loads(out.read_text())
    assert set(document["best"]["params"]) == {"EMA_SHORT_PERIOD", "USE_EMA_FILTER"}
    assert document["study"]["trials"] == 12 and document["trials_per_second"] > 0
    page = report.read_text()
    for testid in ("verdict", "overfitting-table", "equity-chart", "history-chart", "parallel-chart", "best-params"):
        assert f'data-testid="{testid}"' in page


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--space", "EMA_SHORT_PERIOD"], "parameter EMA_SHORT_PERIOD: has no bounds"),
        (["--space", "EMA_SHORT_PERIOD=3:8", "--objective", "luck"], "'luck' is not a valid Objective"),
        (["--space", "EMA_SHORT_PERIOD=3:8", "--params", "FEE=2"], "parameter FEE"),
        (["--space", "EMA_SHORT_PERIOD=3:8", "--symbols", "ETHUSDT"], "holds BTCUSDT only"),
        (["--space", "STOP_LOSS_PERCENTAGE=0.01:0.02", "--sampler", "grid"], "STOP_LOSS_PERCENTAGE: a float needs"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(
    candle_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli.main(["--data", str(candle_slice), "--storage", storage, *argv]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_a_killed_study_resumes(candle_slice: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    base = [sys.executable, "-m", "backtest.optimize", "--data", str(candle_slice), "--storage", storage]
    base += ["--study", "r", "--space", "EMA_SHORT_PERIOD=2:20 EMA_LONG_PERIOD=21:80", "--workers", "1"]
    base += ["--batch", "4", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    first = subprocess.Popen([*base, "--trials", "2000"], cwd=tmp_path, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        stored: list[optuna.trial.FrozenTrial] = []
        while len(stored) < 8:
            assert first.poll() is None, "the first run ended before it was killed"
            assert time.monotonic() < deadline, "no trial was stored in time"
            time.sleep(0.5)
            try:
                stored = optuna.load_study(study_name="r", storage=storage).trials
            except KeyError:
                stored = []
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = [(t.number, t.params) for t in optuna.load_study(study_name="r", storage=storage).trials]
    total = len(before) + 12
    subprocess.run([*base, "--trials", str(total)], cwd=tmp_path, env=env, check=True, timeout=300)
    after = optuna.load_study(study_name="r", storage=storage).trials
    assert len(after) == total
    assert [(t.number, t.params) for t in after[: len(before)]] == before
    assert [t.number for t in after] == list(range(total))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def priority(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except ProcessLookupError:  # ended meanwhile
        return None


def test_a_study_runs_below_its_callers_priority_and_its_progress_is_in_the_storage(
    candle_slice: Path, tmp_path: Path
) -> None:
    # What the api starts: its own process and local workers, niced, followed through the storage.
    storage = f"sqlite:///{tmp_path / 'n.db'}"
    argv = [sys.executable, "-m", "backtest.optimize", "--data", str(candle_slice), "--storage", storage]
    argv += ["--study", "n", "--space", "EMA_SHORT_PERIOD=2:20", "--trials", "2000", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([*argv, "--nice", "7", "--quiet"], cwd=tmp_path, env=env, start_new_session=True)
    engine = sqlalchemy.create_engine(storage)
    try:
        deadline = time.monotonic() + 300
        while finished_trials(engine, "n") < 16:  # the first batch, written once told
            assert process.poll() is None and time.monotonic() < deadline, "no batch was stored in time"
            time.sleep(0.3)
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        family = [process.pid, *descendants(process.pid)]
        assert len(family) >= 2  # the optimiser and its LocalCluster's worker processes
        assert {priority(pid) for pid in family} - {None} == {min(mine + 7, 19)}
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        engine.dispose()
