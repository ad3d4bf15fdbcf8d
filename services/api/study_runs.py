"""Starting an optimiser study from the dashboard: the request checked field by field, then
``python -m backtest.optimize`` as a subprocess (one at a time), its progress and its end.

The optimiser is its own process (below the api's CPU priority, ``OPTIMIZE_NICE``), never the
api's: a long study does not slow the dashboard. The trials done are counted in the study's
storage, where it writes each batch once told; the best so far is in its ``--progress-file``.
The study runs where the optimiser sends its trials: the Dask cluster of
``DASK_SCHEDULER_ADDRESS`` when the api's environment names one (the subprocess inherits it),
else a LocalCluster on this host. It writes ``<study>.json``/``.html`` into the report folder
the studies panel lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy
from pydantic import BaseModel, ConfigDict, Field

from backtest.optimize.data import series_paths
from backtest.optimize.persist import finished_trials
from backtest.optimize.space import field_kind, parse_space, schema_bounds
from backtest.optimize.study import storage_url
from services.api.config import PROJECT_ROOT, ApiSettings
from shared.candles import CandleFileError
from shared.events import now_ms
from shared.logs import redact
from shared.parameter_sets import set_schema
from shared.parameters import ParameterError, StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY

logger = logging.getLogger(__name__)
MAX_TRIALS = 5000
MAX_FOLDS = 10


class StudyBusy(RuntimeError):
    """A study started from the dashboard is still running."""


class Range(BaseModel):
    """The searched interval of one parameter (both None for a yes/no parameter)."""

    model_config = ConfigDict(extra="forbid")

    low: float | None = None
    high: float | None = None


class StudyRequest(BaseModel):
    """The body of ``POST /api/studies``."""

    model_config = ConfigDict(extra="forbid")

    strategy: str = Field(DEFAULT_STRATEGY, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    symbols: list[str] = Field(min_length=1, max_length=20)
    space: dict[str, Range] = Field(min_length=1, max_length=40)
    trials: int = Field(100, ge=1, le=MAX_TRIALS)
    walk_forward: int = Field(0, ge=0, le=MAX_FOLDS, description="train/test folds (0: none)")


def check_request(request: StudyRequest, settings: ApiSettings) -> tuple[list[tuple[str, str]], str, str]:
    """``(problems as (field, message), the --space text, the --symbols text)``; no problem: runnable."""
    problems: list[tuple[str, str]] = []
    registry = settings.strategy_registry()
    try:
        strategy = registry.get(request.strategy)
    except KeyError:
        return [("strategy", f"unknown strategy {request.strategy!r} ({', '.join(registry.names())})")], "", ""
    symbols = [s.upper() for s in request.symbols]
    traded = set(settings.symbols)
    strange = [s for s in symbols if not re.fullmatch(r"[A-Z0-9]{5,20}", s) or s not in traded]
    if strange:
        problems.append(("symbols", f"not traded here: {', '.join(strange)} ({', '.join(sorted(traded))})"))
    elif len(set(symbols)) != len(symbols):
        problems.append(("symbols", "a symbol is given twice"))
    else:
        try:
            series_paths(settings.backtest_data, symbols, None)
        except CandleFileError as e:
            problems.append(("symbols", f"no candles to optimise on: {e}"))
    model = StrategyParameters if strategy.name == DEFAULT_STRATEGY else strategy.Parameters
    # The bounds the dashboard's parameter form shows (the api's schema of the strategy's set).
    schema = set_schema(strategy)["properties"]
    tokens = []
    for name, bounds in request.space.items():
        prop = schema.get(name.upper(), {})
        if (bounds.low is None) != (bounds.high is None):
            problems.append((f"space.{name}", "give both the lowest and the highest value, or neither"))
        elif bounds.low is None or bounds.high is None:
            kind = field_kind(prop) if prop else "bool"
            try:
                low, high = (None, None) if kind == "bool" else schema_bounds(name, prop, kind)
            except ParameterError as e:
                problems.extend((f"space.{n}", m) for n, m in e.problems)
                continue
            tokens.append(name if low is None else f"{name}={low:g}:{high:g}")
        else:
            outside = [v for v in (bounds.low, bounds.high) if _outside(schema.get(name.upper(), {}), v)]
            if outside:
                problems.append((f"space.{name}", f"{outside[0]:g} is {_outside(prop, outside[0])}"))
            else:
                tokens.append(f"{name}={bounds.low:g}:{bounds.high:g}")
    space = " ".join(tokens)
    try:
        parse_space(space, model)
    except ParameterError as e:
        problems.extend((f"space.{name}", message) for name, message in e.problems)
    return problems, space, ",".join(symbols)


def _outside(prop: dict[str, Any], value: float) -> str:
    """Why ``value`` lies outside a schema property's bounds, or "" (the schema's own words)."""
    if prop.get("type") == "integer" and not float(value).is_integer():
        return "not a whole number"
    checks = (
        ("minimum", lambda bound: value < bound, "below the lowest allowed value"),
        ("exclusiveMinimum", lambda bound: value <= bound, "not above the lowest bound"),
        ("maximum", lambda bound: value > bound, "above the highest allowed value"),
        ("exclusiveMaximum", lambda bound: value >= bound, "not below the highest bound"),
    )
    for options in [prop, *prop.get("anyOf", [])]:
        for key, fails, words in checks:
            bound = options.get(key)
            if bound is not None and fails(float(bound)):
                return f"{words} ({bound})"
    return ""


class StudyRunner:
    """At most one optimiser subprocess started by the api, and what became of the last one."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.run: dict[str, Any] = {"state": "idle"}
        self._task: asyncio.Task[None] | None = None
        self._storage = ""  # the Optuna storage of the last study started
        self._engine: sqlalchemy.engine.Engine | None = None

    @property
    def progress_path(self) -> Path:
        return self.settings.optimize_reports_dir.resolve().parent / "runs" / "progress.json"

    def start(self, request: StudyRequest, space: str, symbols: str, who: str) -> dict[str, Any]:
        """Launch the study in the background; ``StudyBusy`` while one runs."""
        if self._task is not None and not self._task.done():
            raise StudyBusy("a study is already running: wait for it to finish")
        name = f"{request.strategy}-{symbols.replace(',', '+')}-{uuid.uuid4().hex[:8]}"
        self._storage = storage_url(None)
        self.progress_path.unlink(missing_ok=True)
        self.run = {
            "state": "running",
            "study": name,
            "started_at_ms": now_ms(),
            "started_by": who,
            "strategy": request.strategy,
            "symbols": symbols.split(","),
            "space": space,
            "trials": request.trials,
            "walk_forward": request.walk_forward,
            "total": request.trials * (1 + request.walk_forward),
        }
        command = [
            sys.executable,
            "-m",
            "backtest.optimize",
            "--data",
            str(self.settings.backtest_data.resolve()),
            "--strategy",
            request.strategy,
            *(["--strategy-path", self.settings.strategy_path] if self.settings.strategy_path else []),
            "--space",
            space,
            "--trials",
            str(request.trials),
            "--walk-forward",
            str(request.walk_forward),
            "--study",
            name,
            "--report-dir",
            str(self.settings.optimize_reports_dir.resolve()),
            "--progress-file",
            str(self.progress_path),
            # The dashboard and the trading services keep the CPU they need while it runs.
            "--nice",
            str(self.settings.optimize_nice),
            # Resolved here: the subprocess runs in the project folder, the api maybe elsewhere.
            "--storage",
            self._storage,
            "--quiet",
        ]
        if not self.settings.backtest_data.is_file():
            command += ["--symbols", symbols]
        self._task = asyncio.create_task(self._execute(command), name="study")
        return self.view()

    def view(self) -> dict[str, Any]:
        """The run's state with the trials done so far (from the optimiser's progress file)."""
        view = dict(self.run)
        if view["state"] == "running":
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                progress = orjson.loads(self.progress_path.read_bytes())
                view.update(done=int(progress.get("done", 0)), best=progress.get("best"))
        return view

    async def current(self) -> dict[str, Any]:
        """``view`` with ``done`` counted in the study's storage, where the optimiser writes each
        batch once it is told (read in a thread: the api's loop never waits on the database)."""
        view = self.view()
        if view["state"] == "running":
            view["done"] = await asyncio.to_thread(self._stored, view["study"])
        return view

    def _stored(self, study: str) -> int:
        if self._engine is None or self._engine.url != sqlalchemy.engine.make_url(self._storage):
            if self._engine is not None:
                self._engine.dispose()
            self._engine = sqlalchemy.create_engine(self._storage)
        return finished_trials(self._engine, study)

    async def _execute(self, command: list[str]) -> None:
        self.progress_path.parent.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.settings.optimize_timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self.run.update(state="failed", finished_at_ms=now_ms(), error="timed out or interrupted")
            logger.warning("study %s stopped: timed out or interrupted", self.run.get("study"))
            return
        lines = [line for line in redact(stderr.decode(errors="replace")).splitlines() if line.strip()]
        ok = process.returncode == 0
        self.run.update(
            state="finished" if ok else "failed",
            finished_at_ms=now_ms(),
            exit_code=process.returncode,
            done=self.run["total"] if ok else self.run.get("done", 0),
            key=self.run["study"] if ok else None,
            error="" if ok else "\n".join(lines[-6:])[-2000:],
        )
        logger.info("study %s %s (exit code %s)", self.run["study"], self.run["state"], process.returncode)

    async def close(self) -> None:
        """Stop a running study (the api is shutting down)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._engine is not None:
            self._engine.dispose()
