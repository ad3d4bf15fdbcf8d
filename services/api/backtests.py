"""Running the backtest CLI on the current parameters, and finding its newest report.

``python -m backtest --data <file> --params "KEY=VALUE ..." --strategy <STRATEGY> --report-dir <dir>`` writes
``<dir>/<key>.json`` and ``<dir>/<key>.html`` where ``key`` is ``backtest.storage.report_key``
of the parameter set, so the report of the current parameters is found by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from backtest.config import BREAKER_KEYS
from backtest.storage import report_paths
from services.api.config import PROJECT_ROOT, ApiSettings
from shared.events import now_ms
from shared.logs import redact
from shared.parameter_sets import SymbolSet, risk_of
from shared.parameters import StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY

logger = logging.getLogger(__name__)
_MAX_SUMMARY_FIELDS = 40


class BacktestBusy(RuntimeError):
    """A backtest is already running in this process."""


class BacktestRunner:
    """At most one backtest subprocess at a time, and what became of the last one."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.run: dict[str, Any] = {"state": "idle"}
        self._task: asyncio.Task[None] | None = None

    @property
    def reports_dir(self) -> Path:
        return self.settings.reports_dir.resolve()

    def _run_of(self, chosen: SymbolSet) -> tuple[StrategyParameters, str, Any]:
        """The CLI's view of a symbol's set: the risk (and ema_cross_rsi) set, the strategy, and
        the strategy's own parameters (None for ema_cross_rsi, whose set is the first)."""
        strategy = self.settings.strategy_registry().get(chosen.strategy)
        base = risk_of(chosen.parameters)
        if strategy.name == DEFAULT_STRATEGY:
            return base, strategy.name, None
        own = strategy.Parameters.model_validate(
            {name: getattr(chosen.parameters, name) for name in strategy.Parameters.model_fields}
        )
        return base, strategy.name, own

    def start(self, chosen: SymbolSet) -> dict[str, Any]:
        """Launch a backtest of a symbol's set in the background; ``BacktestBusy`` if one runs."""
        if self._task is not None and not self._task.done():
            raise BacktestBusy("a backtest is already running")
        self.run = {
            "state": "running",
            "started_at_ms": now_ms(),
            "symbol": chosen.symbol,
            "strategy": chosen.strategy,
            "parameters": chosen.parameters.model_dump(mode="json"),
        }
        self._task = asyncio.create_task(self._execute(*self._run_of(chosen)), name="backtest")
        return dict(self.run)

    async def _execute(self, parameters: StrategyParameters, strategy: str, own: Any) -> None:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "backtest",
            "--data",
            str(self.settings.backtest_data.resolve()),
            "--params",
            " ".join(
                filter(
                    None,
                    (
                        params_argument(parameters),
                        params_argument(own) if own is not None else "",
                        *self._breaker(),
                        *self._protection(),
                    ),
                )
            ),
            "--report-dir",
            str(self.reports_dir),
            # The symbol's strategy with its set in force, as the live service runs it.
            "--strategy",
            strategy,
            *(["--strategy-path", self.settings.strategy_path] if self.settings.strategy_path else []),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.settings.backtest_timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self.run.update(state="failed", finished_at_ms=now_ms(), error="timed out or interrupted")
            logger.warning("backtest stopped: timed out or interrupted")
            return
        tail = redact(stderr.decode(errors="replace")[-2000:])
        ok = process.returncode == 0
        self.run.update(
            state="finished" if ok else "failed",
            finished_at_ms=now_ms(),
            exit_code=process.returncode,
            error="" if ok else tail,
        )
        logger.info("backtest %s exit_code=%s", self.run["state"], process.returncode)

    def _breaker(self) -> list[str]:
        """The executor's breaker limits in force, as ``--params`` assignments."""
        s = self.settings
        values = (s.breaker_daily_loss_pct, s.breaker_max_drawdown_pct, s.breaker_max_losing_streak)
        limits = zip(BREAKER_KEYS, values, strict=True)
        return [f"{name}={value.strip()}" for name, value in limits if value.strip()]

    def _protection(self) -> list[str]:
        """Who sells at the levels live, as ``--params`` assignments (the CLI checks them)."""
        s = self.settings
        pairs = (("PROTECTION", s.protection), ("STOP_LIMIT_OFFSET", s.stop_limit_offset))
        return [f"{name}={value.strip()}" for name, value in pairs if value.strip()]

    def latest_report(self, chosen: SymbolSet) -> dict[str, Any] | None:
        """The report of a symbol's set (a rerun replaces it): key, paths, time, summary."""
        html, json_path = report_paths(self.reports_dir, *self._run_of(chosen))
        body = _read_json(json_path)
        if not isinstance(body, dict):
            return None
        summary = body.get("summary")
        return {
            "key": json_path.stem,
            "created_at_ms": int(json_path.stat().st_mtime * 1000),
            "has_html": html.is_file(),
            "html_path": html,
            "summary": _scalars(summary if isinstance(summary, dict) else {}),
        }

    async def close(self) -> None:
        """Stop a running backtest (the api is shutting down)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _scalars(summary: dict[str, Any]) -> dict[str, Any]:
    scalars = {
        key: value for key, value in summary.items() if isinstance(value, (str, int, float, bool)) or value is None
    }
    return dict(list(scalars.items())[:_MAX_SUMMARY_FIELDS])


def params_argument(parameters: BaseModel) -> str:
    """The CLI's ``--params`` text: ``KEY=VALUE`` pairs separated by spaces."""
    values = parameters.model_dump(mode="json")
    return " ".join(
        f"{name}={str(value).lower() if isinstance(value, bool) else value}" for name, value in values.items()
    )
