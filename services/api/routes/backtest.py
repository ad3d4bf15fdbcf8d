"""Backtesting the current parameters on the bundled candles, and its report."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.backtests import BacktestBusy
from services.api.deps import BacktestsDep, Protected, RedisDep, SettingsDep
from shared.control import current_parameters

router = APIRouter(prefix="/api", tags=["backtest"], dependencies=Protected)
REPORT_URL = "/api/backtest/report"


class Report(BaseModel):
    key: str
    created_at_ms: int
    url: str | None
    summary: dict[str, Any]


class BacktestState(BaseModel):
    run: dict[str, Any]
    report: Report | None
    data: str


async def _state(redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep) -> BacktestState:
    _, parameters = await current_parameters(redis, settings.initial_parameters())
    found = backtests.latest_report(parameters)
    report = None
    if found is not None:
        report = Report(
            key=found["key"],
            created_at_ms=found["created_at_ms"],
            url=REPORT_URL if found["has_html"] else None,
            summary=found["summary"],
        )
    return BacktestState(run=backtests.run, report=report, data=settings.backtest_data.name)


@router.get("/backtest/latest")
async def latest(redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep) -> BacktestState:
    """The last run in this process and the newest report for the current parameters."""
    return await _state(redis, settings, backtests)


@router.post("/backtest", status_code=status.HTTP_202_ACCEPTED, responses={409: {"description": "already running"}})
async def run_backtest(redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep) -> BacktestState:
    """Start a backtest of the current parameters; poll ``/api/backtest/latest`` for the result."""
    _, parameters = await current_parameters(redis, settings.initial_parameters())
    try:
        backtests.start(parameters)
    except BacktestBusy as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return await _state(redis, settings, backtests)


@router.get("/backtest/report", response_class=FileResponse, responses={404: {"description": "no report yet"}})
async def report(redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep) -> FileResponse:
    """The newest HTML report for the current parameters."""
    _, parameters = await current_parameters(redis, settings.initial_parameters())
    found = backtests.latest_report(parameters)
    if found is None or not found["has_html"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no backtest report for the current parameters yet")
    return FileResponse(found["html_path"], media_type="text/html")


def sign_in_instead(request: Request, exc: StarletteHTTPException) -> RedirectResponse | None:
    """A browser opening the report link without a live session gets the sign-in page, not JSON.

    The dashboard at ``/`` shows its sign-in form and, after signing in, returns to ``next``.
    """
    if exc.status_code != status.HTTP_401_UNAUTHORIZED or request.url.path != REPORT_URL:
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    return RedirectResponse(f"/?next={quote(REPORT_URL, safe='')}", status_code=status.HTTP_303_SEE_OTHER)
