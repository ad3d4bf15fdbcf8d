"""A study on a separately started Dask cluster (``dask scheduler`` + two ``dask worker`` processes of
the project's venv): both workers run trials, the result equals the LocalCluster run of the same
seed, and a worker SIGKILLed mid-study costs nothing but its running trials."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from backtest.optimize import cli
from tests.optimize.conftest import write_slice
from tests.support.dask_cluster import Cluster, dask_cluster
from tests.support.shared_data import SharedData

pytestmark = pytest.mark.timeout(600)
SPACE = ["--space", "EMA_SHORT_PERIOD=2:20 EMA_LONG_PERIOD=21:90 RSI_OVERBOUGHT=60:90", "--min-trades", "1"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with dask_cluster(tmp_path, workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_slice(SharedData().main_series(), tmp_path_factory.mktemp("dask-candles"), 20_000)


def optimise(candles: Path, folder: Path, *extra: str) -> dict[str, object]:
    out = folder / f"{len(list(folder.glob('*.json')))}.json"
    argv = ["--data", str(candles), *SPACE, "--storage", f"sqlite:///{folder / 'studies.db'}", "--seed", "3"]
    assert cli.main([*argv, "--batch", "5", "--json", str(out), "--quiet", *extra]) == 0
    document: dict[str, object] = json.loads(out.read_text())
    return document


def test_trials_run_on_both_workers_and_equal_the_local_run(candles: Path, tmp_path: Path, cluster: Cluster) -> None:
    remote = optimise(candles, tmp_path, "--trials", "20", "--study", "remote", "--scheduler", cluster.address)
    local = optimise(candles, tmp_path, "--trials", "20", "--study", "local", "--workers", "2")
    study = remote["study"]
    assert isinstance(study, dict) and study["trials"] == 20
    assert len(study["workers"]) == 2  # both workers ran trials
    assert [(t["params"], t["values"]) for t in remote["history"]] == [  # type: ignore[attr-defined]
        (t["params"], t["values"])
        for t in local["history"]  # type: ignore[attr-defined]
    ]


def test_a_worker_killed_mid_study_loses_nothing(candles: Path, tmp_path: Path, cluster: Cluster) -> None:
    out = tmp_path / "killed.json"
    argv = [sys.executable, "-m", "backtest.optimize", "--data", str(candles), *SPACE, "--trials", "60"]
    argv += ["--storage", f"sqlite:///{tmp_path / 'k.db'}", "--scheduler", cluster.address, "--batch", "6"]
    study = subprocess.Popen([*argv, "--json", str(out), "--quiet"], cwd=tmp_path, env=cluster.env)
    try:
        with Client(cluster.address) as client:
            deadline = time.monotonic() + 300
            while True:  # kill worker a while it holds a trial
                processing = client.processing()
                # Names from one answer of the scheduler's; a worker it lists in one call may be
                # missing from the next one (joining, leaving).
                names = {w: info.get("name") for w, info in client.scheduler_info()["workers"].items()}
                busy = [w for w, tasks in processing.items() if tasks and names.get(w) == "a"]
                if busy:
                    break
                assert time.monotonic() < deadline and study.poll() is None, "worker a never ran a trial"
                time.sleep(0.05)
            cluster.processes["a"].send_signal(signal.SIGKILL)
        assert study.wait(timeout=300) == 0
    finally:
        if study.poll() is None:
            study.kill()
            study.wait(30)
    document = json.loads(out.read_text())
    assert document["study"]["trials"] == 60
    assert document["study"]["states"] == {"complete": 60}
