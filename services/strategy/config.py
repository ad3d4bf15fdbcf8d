"""strategy settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ParameterSettings


class StrategySettings(ParameterSettings):
    """Window size and how old a candle may be and still produce a signal."""

    window_candles: int = Field(1000, alias="STRATEGY_WINDOW_CANDLES", ge=100, le=20_000)
    signal_max_lag_candles: int = Field(3, alias="SIGNAL_MAX_LAG_CANDLES", ge=1)
