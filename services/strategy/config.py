"""strategy settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ParameterSettings


class StrategySettings(ParameterSettings):
    """How old a candle may be and still produce a signal (the window is in ``ParameterSettings``)."""

    signal_max_lag_candles: int = Field(3, alias="SIGNAL_MAX_LAG_CANDLES", ge=1)
