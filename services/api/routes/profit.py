"""Profit figures, per-period results and the equity curve, from the ledger (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status

from services.api.deps import LedgerDep, Protected, SettingsDep
from services.api.routes.history import LEDGER_NOT_READY, read_ledger
from shared.trading.profit import PeriodUnit

router = APIRouter(prefix="/api", tags=["profit"], dependencies=Protected)
Symbol = Query(None, pattern=r"^[A-Z0-9]{5,20}$")


def _traded(symbol: str | None, symbols: list[str]) -> None:
    if symbol is not None and symbol not in symbols:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here")


@router.get("/profit", responses={**LEDGER_NOT_READY, 404: {"description": "symbol not traded by this bot"}})
async def get_profit(ledger: LedgerDep, settings: SettingsDep, symbol: str | None = Symbol) -> dict[str, Any]:
    """Realised and unrealised P&L, fees, win rate, profit factor, expectancy, durations, drawdown,
    best/worst trade and dust, per symbol and in total (decimal strings, quote asset's precision)."""
    _traded(symbol, settings.symbols)
    return await read_ledger(ledger.profit(symbol))


@router.get("/profit/periods", responses={**LEDGER_NOT_READY, 404: {"description": "symbol not traded by this bot"}})
async def get_periods(
    ledger: LedgerDep,
    settings: SettingsDep,
    unit: PeriodUnit = Query(PeriodUnit.DAY),
    symbol: str | None = Symbol,
    limit: int = Query(90, ge=1, le=1000),
) -> dict[str, Any]:
    """Closed trades grouped by the UTC day, ISO week or month of their exit (market time)."""
    _traded(symbol, settings.symbols)
    return await read_ledger(ledger.periods(unit, symbol, limit))


@router.get("/profit/equity", responses={**LEDGER_NOT_READY, 404: {"description": "symbol not traded by this bot"}})
async def get_equity(
    ledger: LedgerDep, settings: SettingsDep, symbol: str | None = Symbol, limit: int = Query(2000, ge=1, le=20000)
) -> dict[str, Any]:
    """Realised P&L and equity after each closed trade, then now (open position at the last price)."""
    _traded(symbol, settings.symbols)
    return await read_ledger(ledger.equity(symbol, limit))
