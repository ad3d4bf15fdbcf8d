"""Market data events published by market_data. Prices in quote asset, volumes in base asset."""

from __future__ import annotations

from decimal import Decimal

from shared.events.envelope import Payload


class Ticker(Payload):
    """Last price of a symbol with its rolling 24 h statistics (Binance miniTicker)."""

    TYPE = "ticker"

    symbol: str
    price: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal


class Kline(Payload):
    """One candle; ``closed`` is true only for the final update of the candle (Binance ``x``)."""

    TYPE = "kline"

    symbol: str
    interval: str
    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    closed: bool


class MarketStatus(Payload):
    """Connection and freshness of market data: connected, disconnected, stale, backfilled."""

    TYPE = "market_status"

    state: str
    symbol: str | None = None
    detail: str = ""
    attempt: int = 0
