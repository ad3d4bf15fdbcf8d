"""The strategies the bot can run (built-in and user), each with its parameter set's JSON schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, SettingsDep
from shared.control import current_set
from shared.parameter_sets import describe


class StrategyView(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    overlays: list[dict[str, str]]


class SymbolStrategy(BaseModel):
    symbol: str
    strategy: str
    parameters_version: int


class Strategies(BaseModel):
    strategies: list[StrategyView]
    symbols: list[SymbolStrategy]


router = APIRouter(prefix="/api", tags=["parameters"], dependencies=Protected)


@router.get("/strategies")
async def strategies(redis: RedisDep, settings: SettingsDep) -> Strategies:
    """Every strategy (built-ins and ``STRATEGY_PATH``'s) with the JSON schema of its parameter set
    (each property's ``title`` is the form's label, with ``unit``, bounds, ``description`` as help,
    ``live_safe``, and ``group``: ``strategy`` or ``risk``), the indicator lines the chart draws for
    it, and each traded symbol's strategy and set version now."""
    registry = settings.strategy_registry()
    symbols = []
    for start in settings.initial_sets().values():
        found = await current_set(redis, start, registry)
        symbols.append(SymbolStrategy(symbol=found.symbol, strategy=found.strategy, parameters_version=found.version))
    return Strategies(strategies=[StrategyView(**describe(s)) for s in registry], symbols=symbols)
