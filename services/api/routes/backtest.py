"""Backtesting the current parameters on the bundled candles, and its report."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.backtests import BacktestBusy
from services.api.deps import BacktestsDep, Protected, RedisDep, SettingsDep
from shared.control import current_set
from shared.parameter_sets import SymbolSet

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


SymbolQuery = Query(
    None, pattern=r"^[A-Za-z0-9]{5,20}$", description="whose strategy and set (default: the first symbol)"
)


async def _chosen(redis: RedisDep, settings: SettingsDep, symbol: str | None) -> SymbolSet:
    """The set in force of ``symbol`` (the first traded symbol when none); 404 when not traded."""
    sets = settings.initial_sets()
    wanted = symbol.upper() if symbol else settings.symbols[0]
    if wanted not in sets:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{wanted} is not traded here ({', '.join(sets)})")
    return await current_set(redis, sets[wanted], settings.strategy_registry())


async def _state(
    redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep, symbol: str | None = None
) -> BacktestState:
    found = backtests.latest_report(await _chosen(redis, settings, symbol))
    report = None
    if found is not None:
        report = Report(
            key=found["key"],
            created_at_ms=found["created_at_ms"],
            url=REPORT_URL if found["has_html"] else None,
            summary=found["summary"],
        )
    return BacktestState(run=backtests.run, report=report, data=settings.backtest_data.name)


@router.get("/backtest/latest", responses={404: {"description": "symbol not traded by this bot"}})
async def latest(
    redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep, symbol: str | None = SymbolQuery
) -> BacktestState:
    """The last run in this process and the newest report for the symbol's strategy and set in force."""
    return await _state(redis, settings, backtests, symbol)


@router.post(
    "/backtest",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "symbol not traded by this bot"}, 409: {"description": "already running"}},
)
async def run_backtest(
    redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep, symbol: str | None = SymbolQuery
) -> BacktestState:
    """Start a backtest of the symbol's strategy and set in force; poll ``/api/backtest/latest`` for the result."""
    try:
        backtests.start(await _chosen(redis, settings, symbol))
    except BacktestBusy as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return await _state(redis, settings, backtests, symbol)


@router.get("/backtest/report", response_class=FileResponse, responses={404: {"description": "no report yet"}})
async def report(
    redis: RedisDep, settings: SettingsDep, backtests: BacktestsDep, symbol: str | None = SymbolQuery
) -> FileResponse:
    """The newest HTML report for the symbol's strategy and set in force."""
    found = backtests.latest_report(await _chosen(redis, settings, symbol))
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
