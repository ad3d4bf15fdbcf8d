"""Where trials run: a Dask ``distributed`` cluster, local by default.

Without an address a ``LocalCluster`` starts one single-threaded worker process per core (the
indicators and the walk hold the GIL); with ``--scheduler tcp://host:8786`` (or
``DASK_SCHEDULER_ADDRESS``, or ``DASK_SCHEDULER``) the trials go to an existing cluster whose workers have the project
installed. The candles are scattered once to every worker; each trial is a task that is retried
if its worker dies (the scheduler reschedules the tasks a lost worker held, and ``retries``
covers an error raised while it was running), so a lost worker costs only its running trials.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dask
import pandas as pd
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from backtest.optimize.trial import Job, run_packed

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
SCHEDULER_ENV_SHORT = "DASK_SCHEDULER"  # accepted as well
RETRIES = 3
# Trials per task: fewer round trips, and still work for every worker within a batch of 16.
DEFAULT_CHUNK = 2
# What a LocalCluster's processes watch less often than Dask's defaults. A trial holds the GIL
# for milliseconds; the statistical profiler sampling it every 10 ms, the event-loop health
# check every 20 ms, the memory check every 100 ms and the system monitor every 500 ms of every
# worker, nanny and the scheduler cost a sixth of a grid study's CPU on 2 cores (the processes'
# CPU time per trial, 19.5 ms with Dask's defaults, 16.1 ms so). The nannies and the scheduler
# run in this process, beside the sampler.
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
}


Item = tuple[str, dict[str, Any], tuple[int, int] | None]  # (key, parameter values, time range)


@dataclass
class Running:
    """A batch submitted by ``TrialPool.start``: its trials, their tasks and the workers they went to."""

    given: list[Item]
    futures: list[Future[bytes]]
    targets: list[str]


@dataclass
class TrialPool:
    """A Dask client with the data scattered to its workers.

    A task runs ``chunk`` trials (``run_trials``): fewer tasks, fewer round trips between the
    client, the scheduler and the workers, for the same results."""

    client: Client
    data: Future[dict[str, pd.DataFrame]]
    raw: dict[str, pd.DataFrame]
    token: str
    job: Job
    chunk: int = DEFAULT_CHUNK
    # Task keys are unique per run: two runs of one study on a shared cluster never mix results.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def run(self, batch: Iterable[Item], done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Results of ``(key, values, time range)`` trials, in the order given; ``done`` after each one finishes.

        Each chunk of trials is submitted as soon as ``batch`` yields it, so the trials of a batch
        the sampler is still asking for already run. Should the scheduler give up on the batch (a
        lost worker took the last copy of the data, or a task failed ``RETRIES`` times), the data
        is scattered again and the batch rerun: a trial is a pure function of its parameters, so
        running it twice changes nothing."""
        return self.finish(self.start(batch), done)

    def start(self, batch: Iterable[Item]) -> Running:
        """Submit ``batch`` (each chunk as soon as it is yielded) without waiting for it: ``finish``
        collects it, while the workers may already run the next one."""
        given: list[Item] = []
        futures: list[Future[bytes]] = []
        targets = self.workers()
        for item in batch:
            given.append(item)
            if len(given) % self.chunk == 0:
                futures.append(self._submit(given[-self.chunk :], 0, targets, len(futures)))
        if len(given) % self.chunk:
            futures.append(self._submit(given[-(len(given) % self.chunk) :], 0, targets, len(futures)))
        return Running(given, futures, targets)

    def finish(self, running: Running, done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """The results of a ``start``ed batch, in its order (see ``run``)."""
        given, futures = running.given, running.futures
        for attempt in range(1, RETRIES + 2):
            try:
                return self._collect(futures, done)
            except (CancelledError, KilledWorker):
                if attempt > RETRIES:
                    raise
                self.data = self.client.scatter([self.raw], broadcast=True, hash=False)[0]
                targets = self.workers()
                futures = [
                    self._submit(given[i : i + self.chunk], attempt, targets, n)
                    for n, i in enumerate(range(0, len(given), self.chunk))
                ]
        raise AssertionError("unreachable")

    def _submit(self, items: list[Item], attempt: int, targets: list[str], n: int) -> Future[bytes]:
        """Submit one chunk, the ``n``-th of the batch, preferably to the ``n``-th worker in turn.

        A chunk often finishes before the sampler has asked the next one, and the scheduler would
        then give every chunk to the same idle worker: taken in turn, every worker runs trials of
        each batch. The preference is loose (``allow_other_workers``): a chunk of a worker that
        died or is busy still runs elsewhere."""
        key = items[0][0] if len(items) == 1 else f"{items[0][0]}+{len(items) - 1}"
        return self.client.submit(
            run_packed,
            self.data,
            self.token,
            self.job,
            [(values, span) for _, values, span in items],
            key=f"{key}-{self.run_id}-{attempt}",
            retries=RETRIES,
            pure=False,
            workers=[targets[n % len(targets)]] if targets else None,
            allow_other_workers=True,
        )

    @staticmethod
    def _collect(futures: list[Future[bytes]], done: Callable[[], None] | None) -> list[dict[str, Any]]:
        results: dict[object, list[dict[str, Any]]] = {}
        for future, packed in as_completed(futures, with_results=True):
            if isinstance(packed, BaseException):  # cancelled: the scheduler lost the data or gave up
                raise packed
            chunk: list[dict[str, Any]] = pickle.loads(packed)  # our own workers' run_packed
            results[future.key] = chunk
            if done is not None:
                for _ in chunk:
                    done()
        return [r for f in futures for r in results[f.key]]

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info()["workers"])


def scheduler_address(explicit: str | None) -> str | None:
    return explicit or os.environ.get(SCHEDULER_ENV) or os.environ.get(SCHEDULER_ENV_SHORT) or None


@contextmanager
def trial_pool(
    data: dict[str, pd.DataFrame],
    token: str,
    job: Job,
    *,
    address: str | None = None,
    workers: int | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> Iterator[TrialPool]:
    """A pool on the cluster at ``address``, or on a LocalCluster of ``workers`` processes (default: one
    per core, watched as ``QUIET_CLUSTER`` says; a remote cluster keeps its own settings)."""
    with dask.config.set(QUIET_CLUSTER if address is None else {}):
        cluster = None
        if address is None:
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: never the 8787 of another cluster on the machine
                scheduler_port=0,
            )
            client = Client(cluster)
        else:
            client = Client(address)
        try:
            # One object with a random key: a dict would be scattered under its own keys ("BTCUSDT"),
            # which two runs on one cluster would share.
            scattered = client.scatter([data], broadcast=True, hash=False)[0]
            yield TrialPool(client, scattered, data, token, job, chunk)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
