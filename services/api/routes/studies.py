"""The optimiser's studies: what ``python -m backtest.optimize`` left in its report folder, a
study started from the dashboard (``POST /api/studies``, its progress) and applying a study's
best parameters to a symbol's set."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep, StudyRunsDep
from services.api.errors import FieldProblem, unprocessable
from services.api.routes.parameters import AskedChange, SymbolQuery, apply_change, labels_of, start_set
from services.api.study_runs import StudyBusy, StudyRequest, check_request
from shared.control import current_parameters, current_set, new_command_id
from shared.parameter_sets import SymbolSet, set_model
from shared.trading.strategies import DEFAULT_STRATEGY

router = APIRouter(prefix="/api", tags=["studies"], dependencies=Protected)
logger = logging.getLogger(__name__)
MAX_STUDIES = 200
LIKELY_OVERFIT = "likely overfit"  # backtest.optimize.verdict.Verdict.LIKELY_OVERFIT


class StudySummary(BaseModel):
    key: str
    name: str
    strategy: str | None = None
    symbols: list[str] = []
    interval: str | None = None
    period: list[str] = []
    trials: int = 0
    verdict: str | None = None
    reasons: list[str] = []
    pbo: float | None = None
    deflated_sharpe: float | None = None
    walk_forward_return_pct: float | None = None
    best_params: dict[str, Any] | None = None
    best_metrics: dict[str, Any] | None = None
    defaults: dict[str, Any] | None = None
    report_url: str | None = None
    written_at_ms: int


def _summary(path: Path) -> StudySummary | None:
    try:
        d = json.loads(path.read_text())
        best, figures, walk = d.get("best") or {}, d.get("overfitting") or {}, d.get("walk_forward") or {}
        return StudySummary(
            key=path.stem,
            name=d["study"]["name"],
            strategy=d.get("strategy"),
            symbols=d.get("symbols", []),
            interval=d.get("interval"),
            period=d.get("period", []),
            trials=d["study"]["trials"],
            verdict=(d.get("verdict") or {}).get("verdict"),
            reasons=(d.get("verdict") or {}).get("reasons", []),
            pbo=figures.get("pbo"),
            deflated_sharpe=figures.get("deflated_sharpe"),
            walk_forward_return_pct=walk.get("stitched_return_pct"),
            best_params=best.get("params"),
            best_metrics=best.get("metrics"),
            defaults=d.get("defaults"),
            report_url=f"/api/studies/{path.stem}/report" if path.with_suffix(".html").is_file() else None,
            written_at_ms=int(path.stat().st_mtime * 1000),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:  # a half-written or foreign file is skipped
        logger.warning("study file %s skipped: %s", path.name, e)
        return None


@router.get("/studies")
async def studies(settings: SettingsDep) -> list[StudySummary]:
    """Every study of the report folder, newest first."""
    folder = settings.optimize_reports_dir
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
    return [s for s in (_summary(p) for p in files[:MAX_STUDIES]) if s is not None]


@router.post(
    "/studies",
    status_code=202,
    responses={
        409: {"description": "a study is already running"},
        422: {"description": "one entry per invalid field (strategy, symbols, space.NAME, trials, walk_forward)"},
    },
)
async def start_study(request: StudyRequest, settings: SettingsDep, runs: StudyRunsDep, who: RequestedBy) -> Any:
    """Start a study of ``strategy`` on ``symbols`` over the ``space`` ranges (the strategy's
    parameter schema bounds them), ``trials`` trials and ``walk_forward`` folds; it runs in the
    background where the optimiser sends its trials (``DASK_SCHEDULER_ADDRESS``, else a local
    cluster) and is listed with the other studies once finished. Follow it with ``GET /api/studies/run``."""
    problems, space, symbols = check_request(request, settings)
    if problems:
        return unprocessable([FieldProblem(field=f, label=_LABELS.get(f, f), message=m) for f, m in problems])
    try:
        run = runs.start(request, space, symbols, who)
    except StudyBusy as e:
        return JSONResponse(status_code=409, content={"detail": str(e), "run": runs.view()})
    logger.info(
        "study %s started by %s: %s on %s, %d trials", run["study"], who, request.strategy, symbols, request.trials
    )
    return run


@router.get("/studies/run")
async def study_run(runs: StudyRunsDep) -> dict[str, Any]:
    """The study started from the dashboard: idle, running (trials done of total, best so far),
    finished (its ``key`` in ``/api/studies``) or failed (the optimiser's error)."""
    return await runs.current()


_LABELS = {"strategy": "Strategy", "symbols": "Symbols", "trials": "Trials", "walk_forward": "Walk-forward folds"}


@router.get("/studies/{key}/report", response_class=FileResponse, responses={404: {"description": "no such study"}})
async def study_report(key: str, settings: SettingsDep) -> FileResponse:
    """The HTML report of one study (``key`` as listed by ``/api/studies``)."""
    folder = settings.optimize_reports_dir
    known = {p.stem: p for p in folder.glob("*.html")} if folder.is_dir() else {}
    if key not in known:  # only names found in the folder: no path is built from the request
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no study report {key!r}")
    return FileResponse(known[key], media_type="text/html")


class Applied(BaseModel):
    symbol: str | None = None
    strategy: str
    version: int
    parameters: dict[str, Any]
    command_id: str | None


def _study_file(settings: SettingsDep, key: str) -> Path:
    folder = settings.optimize_reports_dir
    known = {p.stem: p for p in folder.glob("*.json")} if folder.is_dir() else {}
    if key not in known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no study {key!r}")
    return known[key]


def _parameter_values(best: dict[str, Any]) -> dict[str, Any]:
    # Floats of the search become short decimal text: the parameter set stores Decimals.
    return {name: f"{value:.6g}" if isinstance(value, float) else value for name, value in best.items()}


@router.post(
    "/studies/{key}/apply",
    response_model=Applied,
    responses={
        404: {"description": "no such study, or the symbol is not traded here"},
        409: {
            "description": "likely overfit (confirm_overfit=true) or dangerous (confirm_dangerous=true, "
            "the body lists the dangers as PUT /api/parameters does)"
        },
        422: {"description": "the study's parameters do not fit the symbol's set (one entry per field)"},
    },
)
async def apply_study(
    key: str,
    redis: RedisDep,
    settings: SettingsDep,
    who: RequestedBy,
    confirm_overfit: bool = Query(False, description="apply a study whose verdict is 'likely overfit'"),
    confirm_dangerous: bool = Query(False, description="as for PUT /api/parameters"),
    symbol: str | None = SymbolQuery,
) -> Applied | JSONResponse:
    """The best parameters of a study as the next version of ``symbol``'s set (none: the shared
    set), through the same validated, versioned and audited change as ``PUT /api/parameters``,
    answered by the executor under the returned ``command_id``. A study of another strategy
    than the symbol runs is refused (field ``symbol``); a study judged likely overfit is refused
    unless confirmed."""
    summary = _summary(_study_file(settings, key))
    if summary is None or not summary.best_params:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"study {key!r} has no best parameters")
    start = start_set(settings, symbol)
    registry = settings.strategy_registry()
    current = await current_set(redis, start, registry) if isinstance(start, SymbolSet) else None
    strategy = current.strategy if current else DEFAULT_STRATEGY
    if summary.strategy and summary.strategy != strategy:
        where = current.symbol if current else "the shared set"
        message = f"{where} runs {strategy}; the study tuned {summary.strategy}: switch its strategy first"
        return unprocessable([FieldProblem(field="symbol", label="Symbol", message=message)])
    if summary.verdict == LIKELY_OVERFIT and not confirm_overfit:
        detail = f"the study's verdict is {LIKELY_OVERFIT}: {'; '.join(summary.reasons)}; confirm to apply"
        return JSONResponse(status_code=409, content={"detail": detail, "reasons": summary.reasons})
    values = _parameter_values(summary.best_params)
    known = set_model(registry.get(strategy)).model_fields
    foreign = [name for name in values if name not in known]
    if foreign:
        problems = [FieldProblem(field=n, label=n, message=f"not a field of {strategy}'s set") for n in foreign]
        return unprocessable(problems)
    before = current.version if current else (await current_parameters(redis, settings.initial_parameters()))[0]
    command_id = new_command_id()
    change = AskedChange(values, who, start, command_id, confirm_dangerous)
    applied = await apply_change(redis, settings, change, labels_of(registry.get(strategy)))
    if isinstance(applied, JSONResponse):
        return applied
    version, parameters = applied
    # A set the study's values leave as it was is no new version: nothing for the executor to answer.
    changed = version != before
    logger.info(
        "study %s applied by %s to %s as parameter version %d", summary.name, who, symbol or "the shared set", version
    )
    return Applied(
        symbol=current.symbol if current else None,
        strategy=strategy,
        version=version,
        parameters=parameters.model_dump(mode="json"),
        command_id=command_id if changed else None,
    )
