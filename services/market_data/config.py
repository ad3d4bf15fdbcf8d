"""market_data settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.settings import ServiceSettings, warmup_candles_field


class MarketDataSettings(ServiceSettings):
    """Feed resilience and warm-up; names are the environment variables."""

    warmup_candles: int = warmup_candles_field()
    stale_after_s: float = Field(10.0, alias="MARKET_STALE_AFTER_S", gt=0)
    reconnect_max_delay_s: float = Field(30.0, alias="RECONNECT_MAX_DELAY_S", gt=0)
    max_connection_age_s: float = Field(23.5 * 3600, alias="MAX_CONNECTION_AGE_S", gt=0)
    # Tickers from !miniTicker@arr (one message a second for the whole market) or per symbol;
    # auto: the array past MARKET_ARRAY_ABOVE symbols.
    ticker_stream: Literal["auto", "array", "symbol"] = Field("auto", alias="MARKET_TICKER_STREAM")
    array_above: int = Field(3, ge=0, alias="MARKET_ARRAY_ABOVE")
    # Forming candles for the chart: the latest per symbol, written at most this often.
    kline_update_s: float = Field(1.0, gt=0, le=60, alias="MARKET_KLINE_UPDATE_S")
