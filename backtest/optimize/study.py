"""The Optuna side: storage, sampler, and the ask/tell loop that feeds a ``TrialPool``.

Trials are asked in batches of a fixed size, run in parallel, and told back in trial-number
order once the whole batch is in. What a trial is asked therefore depends only on the seed, the
batch size and the earlier results, never on which worker finished first or how many there
are: the same seed gives the same study on one core, on a LocalCluster or on a remote cluster.
A study that was stopped resumes from its storage; a killed run loses at most the batch it was
running (each batch is written once told) and the sampler continues from seed + trials already stored.

The sampler (``--sampler``): TPE by default for one objective, NSGA-II for several; ``random``;
``grid``, every point of the space's grid once (``space.grid``) in an order the seed shuffles,
the same order on resuming (its seed is the study's, not moved by the stored trials). Grid and
random trials do not depend on the results, so their next batch runs while the last one is told
(``optimise``): a killed run of theirs loses at most two batches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from backtest.optimize.objectives import Constraints, Metrics, Objective
from backtest.optimize.persist import write_trials
from backtest.optimize.scheduler import Item, Running, TrialPool
from backtest.optimize.space import Dimension, grid

DEFAULT_STORAGE = Path("var") / "optimize" / "studies.sqlite3"
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
SAMPLERS = ("tpe", "random", "grid", "nsga2")
# Samplers whose next trial depends on the results told so far: for them the batch size is part
# of the study; for the others it only sets how many trials are asked ahead and written at once.
LEARNING = ("tpe", "nsga2")


def storage_url(explicit: str | None = None) -> str:
    """``explicit``, else the project's PostgreSQL when DATABASE_URL names one, else SQLite under var/."""
    if explicit:
        return explicit
    database = os.environ.get("DATABASE_URL", "")
    if database.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + database.split("://", 1)[1]
    if database.startswith("postgresql+"):
        return database
    DEFAULT_STORAGE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORAGE.resolve()}"


def trial_constraints(trial: FrozenTrial) -> Sequence[float]:
    """What ``Constraints.violations`` stored on the trial (feasible when absent)."""
    values: Sequence[float] = trial.user_attrs.get("constraints", (0.0, 0.0))
    return values


@dataclass
class Studies:
    """The study the sampler works on (in memory) and its stored copy.

    Asking and telling through an SQL storage costs several round trips per trial, more than a
    trial itself; the sampler therefore works on an in-memory study loaded from the storage, and
    each batch's finished trials are written back in one transaction once it is told (``flush``,
    ``backtest.optimize.persist``): a killed run loses at most the batch it was running."""

    memory: optuna.Study
    stored: optuna.Study
    storage: optuna.storages.RDBStorage
    written: int
    unfinished: int = 0

    @property
    def name(self) -> str:
        return self.stored.study_name

    def flush(self) -> None:
        fresh = self.memory.get_trials(deepcopy=False)[self.written :]
        if fresh:
            write_trials(self.storage, self.stored._study_id, fresh, self.unfinished)
            self.written += len(fresh)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a commit no longer waits for its own fsync, and a killed
    # process still loses no committed trial (only a power cut could lose the last ones).
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The Optuna storage of ``url``; an SQLite file writes each batch without waiting for the disk."""
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:///"):
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened from now on get the pragmas
    return storage


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, which gives trial number i the i-th point of the shuffled grid,
    without its end-of-trial check: that check scans every trial at each tell and, once the grid
    is done, calls ``Study.stop``, which raises outside ``Study.optimize``. ``optimise`` stops at
    the grid's size itself (``Search.trials`` is at most ``space.grid_size``)."""

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        return None


def default_sampler(objectives: Sequence[Objective]) -> str:
    return "tpe" if len(objectives) == 1 else "nsga2"


def make_sampler(kind: str, seed: int, previous: int, space: Sequence[Dimension] = ()) -> optuna.samplers.BaseSampler:
    """The ``kind`` sampler of a study holding ``previous`` finished trials (see the module docstring)."""
    if kind == "grid":
        return GridSampler(grid(list(space)), seed=seed)
    resumed = seed + previous
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=resumed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=resumed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=resumed)
    raise ValueError(f"--sampler: {kind!r} is not one of {', '.join(SAMPLERS)}")


def open_study(
    name: str,
    storage: str,
    objectives: Sequence[Objective],
    seed: int,
    sampler: str | None = None,
    space: Sequence[Dimension] = (),
) -> Studies:
    """Create or resume ``name`` with ``sampler`` (default: TPE for one objective, NSGA-II for
    several; ``grid`` needs the ``space``); every objective is maximised."""
    directions = [optuna.study.StudyDirection.MAXIMIZE] * len(objectives)
    backend = open_storage(storage)
    stored = optuna.create_study(study_name=name, storage=backend, directions=directions, load_if_exists=True)
    stored.set_user_attr("objectives", [o.value for o in objectives])
    previous = stored.get_trials(deepcopy=False, states=FINISHED)
    chosen = make_sampler(sampler or default_sampler(objectives), seed, len(previous), space)
    memory = optuna.create_study(study_name=name, sampler=chosen, directions=directions)
    memory.add_trials(previous)
    # Trials another client left unfinished are not the sampler's, but keep their numbers.
    unfinished = len(stored.get_trials(deepcopy=False)) - len(previous)
    return Studies(memory, stored, backend, len(previous), unfinished)


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


@dataclass(frozen=True)
class Search:
    """One search: the space, what is scored, the budget and the batch size."""

    space: list[Dimension]
    objectives: list[Objective]
    constraints: Constraints
    trials: int
    batch: int = 16
    timeout: float | None = None
    span: tuple[int, int] | None = None
    sampler: str | None = None  # None: default_sampler(objectives)


def tell(study: optuna.Study, trial: optuna.Trial, result: dict[str, Any], search: Search) -> None:
    """Store one result on its trial and hand it to the sampler."""
    trial.set_user_attr("worker", result.get("worker", ""))
    if "problems" in result:
        trial.set_user_attr("problems", result["problems"])
        study.tell(trial, state=TrialState.FAIL)
        return
    metrics = Metrics(**result["metrics"])
    trial.set_user_attr("metrics", result["metrics"])
    trial.set_user_attr("returns", result["returns"])
    violations = search.constraints.violations(metrics)
    trial.set_user_attr("constraints", violations)
    for name, value in zip(("min_trades", "max_drawdown"), violations, strict=True):
        trial.set_constraint(name, value)  # what the samplers read
    study.tell(trial, [metrics.value(o) for o in search.objectives])


def ask(study: optuna.Study, search: Search, size: int, asked: list[optuna.Trial]) -> Iterator[Item]:
    """``size`` new trials, each asked and its values suggested when the pool takes it (kept in ``asked``)."""
    for _ in range(size):
        trial = study.ask()
        asked.append(trial)
        yield f"{study.study_name}-{trial.number}", {d.name: d.suggest(trial) for d in search.space}, search.span


def _batches(study: optuna.Study, pool: TrialPool, search: Search) -> Iterator[tuple[list[optuna.Trial], Running]]:
    """Each batch asked and submitted when the caller takes it, until the budget or the timeout is reached."""
    started = time.monotonic()
    done = finished(study)
    while done < search.trials and (search.timeout is None or time.monotonic() - started < search.timeout):
        asked: list[optuna.Trial] = []
        size = min(search.batch, search.trials - done)
        yield asked, pool.start(ask(study, search, size, asked))
        done += size


def optimise(
    studies: Studies, pool: TrialPool, search: Search, progress: Callable[[optuna.Study, int], None] | None = None
) -> None:
    """Run trials until the study holds ``search.trials`` finished ones or ``search.timeout`` seconds passed.

    Each trial of a batch goes to the workers as soon as it is asked, while the sampler asks the
    next ones (which see the earlier ones as running, as when the whole batch is asked first:
    the same trials either way); the batch is told in trial order once it is all in, then written
    to the storage. A sampler that does not learn from the results (grid, random) has the next
    batch asked and running before the last one is told and written, so the workers never wait
    for the client: the same trials, as they do not depend on what was told."""
    study = studies.memory
    one = None if progress is None else lambda: progress(study, 1)

    def told(asked: list[optuna.Trial], running: Running) -> None:
        for trial, result in zip(asked, pool.finish(running, one), strict=True):
            tell(study, trial, result, search)
        studies.flush()
        if progress is not None:
            progress(study, 0)

    ahead = (search.sampler or default_sampler(search.objectives)) not in LEARNING
    previous: tuple[list[optuna.Trial], Running] | None = None
    for batch in _batches(study, pool, search):
        if not ahead:
            told(*batch)
            continue
        if previous is not None:
            told(*previous)
        previous = batch
    if previous is not None:
        told(*previous)
    studies.flush()


def feasible(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials that meet the constraints."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if all(v <= 0 for v in trial_constraints(t))
    ]


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The feasible trial with the highest first objective (on the Pareto front for several)."""
    candidates = feasible(study)
    if not candidates:
        return None
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        candidates = [t for t in candidates if t.number in front] or candidates
    return max(candidates, key=lambda t: (t.values[0], -t.number))
