"""A Dask cluster of separate processes (``dask scheduler`` and ``dask worker`` of the project's venv)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distributed import Client

from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


class Cluster:
    """The scheduler and worker processes; ``kill`` SIGKILLs one worker (its nanny-less process)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.folder = folder
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                [str(DASK), *args], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_workers(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with Client(self.address, timeout=timeout) as client:
            while len(client.scheduler_info()["workers"]) < count:
                assert time.monotonic() < deadline, (self.folder / "a.log").read_text(errors="replace")
                time.sleep(0.3)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


@contextmanager
def dask_cluster(folder: Path, workers: int = 1) -> Iterator[Cluster]:
    """A scheduler on a free port and ``workers`` single-threaded workers, stopped on exit."""
    c = Cluster(folder)
    c.start(
        "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(c.port), "--dashboard-address", "127.0.0.1:0"
    )
    try:
        for index in range(workers):
            name = chr(ord("a") + index)
            c.start(
                name,
                "worker",
                c.address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-nanny",
                "--dashboard-address",
                "127.0.0.1:0",
            )
        c.wait_workers(workers)
        yield c
    finally:
        c.stop()
