"""Candles for the chart, joined with the strategy's indicator values and trade markers.

Nothing is computed here: closed candles come from the symbol's kline stream, the forming
one from the kline updates, the indicators from each candle's decision record.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from services.api.deps import EngineDep, Protected, RedisDep, SettingsDep
from services.api.routes.status import PositionView, position_view
from shared import streams
from shared.codec import DecodeError, decode
from shared.control import current_parameters
from shared.settings import TIMEFRAME_MS, VALID_TIMEFRAMES
from shared.store.queries import positions_since

router = APIRouter(prefix="/api", tags=["chart"], dependencies=Protected)
logger = logging.getLogger(__name__)
INDICATORS = ("ema_short", "ema_long", "ema_filter", "rsi")
UPDATES_LOOKBACK = 200


class Candle(BaseModel):
    time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    closed: bool
    ema_short: float | None = None
    ema_long: float | None = None
    ema_filter: float | None = None
    rsi: float | None = None


class Marker(BaseModel):
    time_ms: int
    kind: str  # signal | entry | exit
    side: str
    price: str | None
    text: str


class Chart(BaseModel):
    symbol: str
    interval: str
    candles: list[Candle]
    markers: list[Marker]
    position: PositionView | None
    rsi_overbought: float
    rsi_oversold: float


def _events(entries: list[tuple[str, dict[str, str]]], kind: str) -> list[Any]:
    events = []
    for _, fields in entries:
        try:
            event = decode(fields)
        except DecodeError:
            continue
        if event.type == kind:
            events.append(event)
    return events


def _candle(kline: Any, indicators: dict[str, Any] | None) -> Candle:
    values = {name: _number((indicators or {}).get(name)) for name in INDICATORS}
    return Candle(
        time_ms=kline.open_time_ms,
        open=format(kline.open, "f"),
        high=format(kline.high, "f"),
        low=format(kline.low, "f"),
        close=format(kline.close, "f"),
        volume=format(kline.volume, "f"),
        closed=kline.closed,
        **values,
    )


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


async def _trade_markers(engine: EngineDep, symbol: str, since_ms: int, step_ms: int) -> list[Marker]:
    try:
        positions = await positions_since(engine, symbol, since_ms)
    except SQLAlchemyError as e:  # no ledger yet: the chart still shows candles and signals
        logger.debug("no trade markers: %s", e.__class__.__name__)
        return []
    markers = []
    for row in positions:
        if row["entry_time_ms"] is not None and row["entry_price"] is not None:
            markers.append(Marker(time_ms=row["entry_time_ms"] - row["entry_time_ms"] % step_ms, kind="entry",
                                  side="BUY", price=format(row["entry_price"], "f"), text="entry"))
        if row["exit_time_ms"] is not None and row["exit_price"] is not None:
            result = "" if row["return_pct"] is None else f" {row['return_pct']:.2f}%"
            markers.append(Marker(time_ms=row["exit_time_ms"] - row["exit_time_ms"] % step_ms, kind="exit",
                                  side="SELL", price=format(row["exit_price"], "f"), text=f"{row['exit_reason'] or 'exit'}{result}"))
    return markers


@router.get("/candles", responses={404: {"description": "symbol not traded by this bot"}})
async def candles(
    redis: RedisDep,
    engine: EngineDep,
    settings: SettingsDep,
    symbol: str | None = Query(None, pattern=r"^[A-Z0-9]{5,20}$"),
    interval: str | None = Query(None, pattern="^(" + "|".join(VALID_TIMEFRAMES) + ")$"),
    limit: int = Query(300, ge=1, le=2000),
) -> Chart:
    """Closed candles plus the forming one, with EMA short/long/filter and RSI per candle."""
    symbol = symbol or settings.symbols[0]
    interval = interval or settings.timeframe
    if symbol not in settings.symbols:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here")
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrevrange(streams.kline_stream(symbol), count=limit)
        pipe.xrevrange(streams.DECISIONS, count=limit * len(settings.symbols) + 50)
        pipe.xrevrange(streams.KLINE_UPDATES, count=UPDATES_LOOKBACK)
        pipe.xrevrange(streams.SIGNALS, count=500)
        pipe.hget(streams.POSITIONS, symbol)
        pipe.hget(streams.MARKET_LAST_PRICE, symbol)
        closed_entries, decision_entries, update_entries, signal_entries, position_raw, price = await pipe.execute()
    indicators = {
        event.payload.candle_open_time_ms: event.payload.indicators
        for event in _events(decision_entries, "decision")
        if event.payload.symbol == symbol and event.payload.interval == interval
    }
    klines = [event.payload for event in reversed(_events(closed_entries, "kline")) if event.payload.interval == interval]
    rows = [_candle(kline, indicators.get(kline.open_time_ms)) for kline in klines]
    last_open = rows[-1].time_ms if rows else -1
    for event in _events(update_entries, "kline"):
        kline = event.payload
        if kline.symbol == symbol and kline.interval == interval and not kline.closed and kline.open_time_ms > last_open:
            rows.append(_candle(kline, None))
            break
    since = rows[0].time_ms if rows else 0
    markers = [
        Marker(time_ms=signal.candle_open_time_ms, kind="signal", side=signal.side, price=format(signal.price, "f"), text=signal.reason)
        for signal in (event.payload for event in reversed(_events(signal_entries, "signal")))
        if signal.symbol == symbol and signal.interval == interval and signal.candle_open_time_ms >= since
    ]
    markers += await _trade_markers(engine, symbol, since, TIMEFRAME_MS[interval])
    markers.sort(key=lambda marker: marker.time_ms)
    _, parameters = await current_parameters(redis, settings.initial_parameters())
    return Chart(
        symbol=symbol,
        interval=interval,
        candles=rows,
        markers=markers,
        position=position_view(position_raw, price),
        rsi_overbought=parameters.RSI_OVERBOUGHT,
        rsi_oversold=parameters.RSI_OVERSOLD,
    )
