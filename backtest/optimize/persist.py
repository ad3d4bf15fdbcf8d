"""Finished trials written to an Optuna SQL storage in one transaction.

``Study.add_trials`` writes a trial at a time, each its own transaction of about fifteen
statements (the study row locked, the trial inserted and flushed, every parameter checked
against the study's earlier distributions, every attribute upserted): tens of milliseconds per
trial, more than a trial itself. The sampler's study is in memory and already holds those
trials, numbered and checked, so ``write_trials`` inserts them as they are into Optuna's own
tables (a statement per table, the rows of all the batch's trials at once), in one transaction
per batch: what ``optuna.load_study`` reads back is the same trials
(``tests/optimize/test_persist.py`` compares every field with what ``add_trials`` stores). A
process killed mid-study therefore loses at most the batch it was running.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState


def _utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    """As ``TrialModel`` stores a time: naive UTC (a naive ``moment`` is local time)."""
    return None if moment is None else moment.astimezone(datetime.UTC).replace(tzinfo=None)


def _children(trial_id: int, trial: FrozenTrial) -> dict[sqlalchemy.Table, list[dict[str, Any]]]:
    """The rows of one trial's values, parameters, attributes and intermediate values."""
    values = []
    for objective, value in enumerate(trial.values or ()):
        stored, kind = models.TrialValueModel.value_to_stored_repr(value)
        values.append({"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind})
    params = [
        {
            "trial_id": trial_id,
            "param_name": name,
            "param_value": trial.distributions[name].to_internal_repr(value),
            "distribution_json": distribution_to_json(trial.distributions[name]),
        }
        for name, value in trial.params.items()
    ]
    steps = []
    for step, value in trial.intermediate_values.items():
        number, form = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        steps.append(
            {"trial_id": trial_id, "step": step, "intermediate_value": number, "intermediate_value_type": form}
        )
    return {
        _TABLES["values"]: values,
        _TABLES["params"]: params,
        _TABLES["user"]: [
            {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in trial.user_attrs.items()
        ],
        _TABLES["system"]: [
            {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in trial.system_attrs.items()
        ],
        _TABLES["steps"]: steps,
    }


_TABLES: dict[str, sqlalchemy.Table] = {
    "trials": models.TrialModel.__table__,
    "values": models.TrialValueModel.__table__,
    "params": models.TrialParamModel.__table__,
    "user": models.TrialUserAttributeModel.__table__,
    "system": models.TrialSystemAttributeModel.__table__,
    "steps": models.TrialIntermediateValueModel.__table__,
}


def write_trials(storage: RDBStorage, study_id: int, trials: Sequence[FrozenTrial], shift: int = 0) -> None:
    """Insert finished ``trials`` in one transaction, each numbered its number + ``shift`` (the
    stored trials the in-memory study does not hold), so that they follow the stored ones."""
    if not trials:
        return
    table = _TABLES["trials"]
    rows = [
        {
            "number": t.number + shift,
            "study_id": study_id,
            "state": t.state,
            "datetime_start": _utc(t.datetime_start),
            "datetime_complete": _utc(t.datetime_complete),
        }
        for t in trials
    ]
    with storage.engine.begin() as connection:
        insert = sqlalchemy.insert(table).returning(table.c.trial_id, sort_by_parameter_order=True)
        ids = connection.execute(insert, rows).scalars().all()
        children: dict[sqlalchemy.Table, list[dict[str, Any]]] = {}
        for trial_id, trial in zip(ids, trials, strict=True):
            for child, found in _children(trial_id, trial).items():
                children.setdefault(child, []).extend(found)
        for child, found in children.items():
            if found:
                connection.execute(sqlalchemy.insert(child), found)


def finished_trials(engine: sqlalchemy.engine.Engine, study: str) -> int:
    """Finished trials stored for ``study`` and its walk-forward studies (``<study>.wf<i>``): the
    progress of a run that another process follows; 0 before the run created its tables."""
    escaped = study.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    folds = models.StudyModel.study_name.like(f"{escaped}.wf%", escape="\\")
    names = sqlalchemy.or_(models.StudyModel.study_name == study, folds)
    query = (
        sqlalchemy.select(sqlalchemy.func.count())
        .select_from(models.TrialModel)
        .join(models.StudyModel, models.StudyModel.study_id == models.TrialModel.study_id)
        .where(names, models.TrialModel.state.in_([s for s in TrialState if s.is_finished()]))
    )
    try:
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
    except sqlalchemy.exc.OperationalError:  # no such table yet
        return 0
