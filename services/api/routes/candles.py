"""Candles for the chart in the timeframe asked for, with the strategy's indicator values and the
trade markers, all in market time.

Nothing is computed here but the aggregation: closed candles, indicator values and signals come
from the api's ``CandleStore`` (the streams, kept in memory), the forming candle from the kline
updates, the trades from the ledger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from services.api.candle_store import Bar, CandleStore, aggregate, bar_of
from services.api.config import ApiSettings
from services.api.deps import CandlesDep, LedgerDep, Protected, RedisDep, SettingsDep
from services.api.errors import FieldProblem, unprocessable
from services.api.ledger_view import LedgerTrade, LedgerView
from services.api.routes.status import PositionView, position_view
from shared import streams
from shared.intervals import INTERVAL_MS
from shared.parameter_sets import SymbolSet
from shared.parameter_store import ask_set, record_of, set_of
from shared.precision import Precision, short_pct
from shared.trading.vocabulary import PositionStatus, Side

router = APIRouter(prefix="/api", tags=["chart"], dependencies=Protected)
logger = logging.getLogger(__name__)
INDICATORS = ("ema_short", "ema_long", "ema_filter", "rsi")
UPDATES_LOOKBACK = 200
CHART_TIMEFRAMES = ("1m", "5m", "15m", "1h")
MAX_BASE_CANDLES = 20_000


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
    lines: dict[str, float | None] = {}


class Overlay(BaseModel):
    column: str  # the key of each candle's ``lines``
    label: str
    pane: str  # price | oscillator


class Marker(BaseModel):
    time_ms: int
    kind: str  # signal | entry | exit
    side: str
    price: str | None
    text: str
    trade_id: int | None = None
    exit_reason: str | None = None


class Chart(BaseModel):
    symbol: str
    interval: str
    timeframe: str
    precision: dict[str, Any] | None = None
    candles: list[Candle]
    markers: list[Marker]
    position: PositionView | None
    rsi_overbought: float | None
    rsi_oversold: float | None
    strategy: str
    parameters_version: int
    overlays: list[Overlay]


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _candle(bar: Bar, indicators: dict[str, Any] | None, f: Precision) -> dict[str, Any]:
    row: dict[str, Any] = {
        "time_ms": bar.open_time_ms,
        "open": f.price(bar.open) or "",
        "high": f.price(bar.high) or "",
        "low": f.price(bar.low) or "",
        "close": f.price(bar.close) or "",
        "volume": f.quantity(bar.volume) or "",
        "closed": bar.closed,
    }
    for name in INDICATORS:
        row[name] = _number((indicators or {}).get(name))
    # Every strategy's columns, for the lines its overlays name (the chart's series per strategy).
    row["lines"] = {
        name: _number(value)
        for name, value in (indicators or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    return row


# Formatted rows of closed candles, reused while the candle, its indicators and the precision are the same.
_ROWS: dict[tuple[str, int, int], tuple[Bar, Any, Precision, dict[str, Any]]] = {}
_ROWS_LIMIT = 200_000


def _cached_candle(
    symbol: str, step_ms: int, bar: Bar, indicators: dict[str, Any] | None, f: Precision
) -> dict[str, Any]:
    key = (symbol, step_ms, bar.open_time_ms)
    hit = _ROWS.get(key)
    if hit is not None and hit[1] is indicators and (hit[2] is f or hit[2] == f) and (hit[0] is bar or hit[0] == bar):
        return hit[3]
    row = _candle(bar, indicators, f)
    if bar.closed:
        if len(_ROWS) >= _ROWS_LIMIT:
            _ROWS.clear()
        _ROWS[key] = (bar, indicators, f, row)
    return row


@dataclass(frozen=True)
class _Drawn:
    """The candles and markers of one request, as JSON, and what they were made from."""

    store: CandleStore
    store_version: int
    forming: Bar | None
    precision: Precision
    trades: list[LedgerTrade]
    candles: orjson.Fragment
    markers: orjson.Fragment

    def made_from(
        self, store: CandleStore, forming: Bar | None, precision: Precision, trades: list[LedgerTrade]
    ) -> bool:
        # ``trades`` is the ledger view's list, replaced (not changed) when the ledger changes.
        return (
            self.store is store
            and self.store_version == store.version
            and self.trades is trades
            and self.forming == forming
            and (self.precision is precision or self.precision == precision)
        )


# Between two entries of the streams (or two ledger changes) every chart request with the same
# query gets the same candles and markers: they are encoded once, not once per request.
_DRAWN: dict[tuple[str, str, int, int | None], _Drawn] = {}
_DRAWN_LIMIT = 256


# The parameter set in force per symbol, parsed (and validated) once per stored value and start
# set, not per request. The start set is part of the key: with nothing stored it is the answer,
# and two apps of one process (the tests') may start a symbol on different strategies.
_SETS: dict[str, tuple[object, object, SymbolSet, SymbolSet]] = {}


def _symbol_set(settings: ApiSettings, symbol: str, own: object, shared: object) -> SymbolSet:
    default = settings.initial_sets()[symbol]
    hit = _SETS.get(symbol)
    if hit is not None and hit[0] == own and hit[1] == shared and hit[2] == default:
        return hit[3]
    chosen = set_of(record_of(own, shared, symbol, default.strategy), default, settings.strategy_registry())
    _SETS[symbol] = (own, shared, default, chosen)
    return chosen


def _bucket(time_ms: int, step_ms: int) -> int:
    return time_ms - time_ms % step_ms


async def _ledger_trades(ledger: LedgerView) -> list[LedgerTrade]:
    try:
        return await ledger.trades()
    except SQLAlchemyError as e:  # no ledger yet: the chart still shows candles and signals
        logger.debug("no trade markers: %s", e.__class__.__name__)
        return []


def _trade_markers(
    trades: list[LedgerTrade],
    symbol: str,
    since_ms: int,
    until_ms: int | None,
    step_ms: int,
    base_ms: int,
    f: Precision,
) -> list[Marker]:
    markers = []
    for trade in trades:
        p = trade.position
        if p.symbol != symbol:
            continue
        entry_at = p.entry_candle_open_ms if p.entry_candle_open_ms is not None else trade.record.entry_time_ms
        if entry_at is not None and p.entry_price is not None and entry_at >= since_ms - base_ms:
            markers.append(
                Marker(
                    time_ms=_bucket(entry_at, step_ms),
                    kind="entry",
                    side=Side.BUY,
                    price=f.price(p.entry_price),
                    text="entry",
                    trade_id=p.id,
                )
            )
        if p.status != PositionStatus.CLOSED or p.exit_price is None:
            continue
        exit_at = p.exit_candle_open_ms
        if exit_at is None:  # a manual close: the candle of the market clock at the command
            exit_at = trade.record.exit_time_ms
        if exit_at is not None and exit_at >= since_ms - base_ms:
            result = "" if p.return_pct is None else f" {short_pct(p.return_pct)}%"
            markers.append(
                Marker(
                    time_ms=_bucket(exit_at, step_ms),
                    kind="exit",
                    side=Side.SELL,
                    price=f.price(p.exit_price),
                    text=f"{p.exit_reason or 'exit'}{result}",
                    trade_id=p.id,
                    exit_reason=p.exit_reason,
                )
            )
    if until_ms is not None:
        markers = [m for m in markers if m.time_ms <= until_ms]
    return [m for m in markers if m.time_ms >= _bucket(since_ms, step_ms)]


@router.get("/candles", response_model=Chart, responses={404: {"description": "symbol not traded by this bot"}})
async def candles(
    redis: RedisDep,
    ledger: LedgerDep,
    store: CandlesDep,
    settings: SettingsDep,
    symbol: str | None = Query(None, pattern=r"^[A-Z0-9]{5,20}$"),
    # The same values as ``timeframe``: an exchange interval the chart does not serve (3m, 1d)
    # is no valid request, and the document says so.
    interval: str | None = Query(
        None, pattern="^(" + "|".join(CHART_TIMEFRAMES) + ")$", description="alias of timeframe"
    ),
    timeframe: str | None = Query(
        None,
        pattern="^(" + "|".join(CHART_TIMEFRAMES) + ")$",
        description="1m, 5m, 15m or 1h, aggregated from the stored candles",
    ),
    limit: int = Query(300, ge=1, le=2000),
    end_ms: int | None = Query(None, ge=0, le=2**53, description="market time: candles opening before it"),
) -> Response:
    """Candles of the timeframe, with the symbol's strategy's indicator values per candle (``lines``;
    ``overlays`` says which to draw, with their label and pane; the EMA and RSI columns of
    ema_cross_rsi also by name), and the trade markers."""
    symbol = symbol or settings.symbols[0]
    if symbol not in settings.symbols:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here")
    base = settings.timeframe
    wanted = timeframe or interval or base
    step_ms, base_ms = INTERVAL_MS[wanted], INTERVAL_MS[base]
    if wanted != base and (wanted not in CHART_TIMEFRAMES or step_ms < base_ms or step_ms % base_ms):
        field = "timeframe" if timeframe else "interval"
        return unprocessable(
            [
                FieldProblem(
                    field=field,
                    label=field,
                    message=(f"must be {base} or a multiple of it among {', '.join(CHART_TIMEFRAMES)}"),
                )
            ]
        )
    await store.load()
    async with redis.pipeline(transaction=False) as pipe:
        # One round trip: what the store has not seen yet, and the state beside the candles.
        store.ask_newest(pipe)
        # The forming candle of each symbol is among the newest few updates.
        pipe.xrevrange(streams.KLINE_UPDATES, count=min(UPDATES_LOOKBACK, 10 * len(settings.symbols) + 10))
        pipe.hget(streams.POSITIONS, symbol)
        pipe.hget(streams.MARKET_LAST_PRICE, symbol)
        ask_set(pipe, symbol)
        if ledger.precisions.stale:
            pipe.hmget(streams.SYMBOL_INFO, ledger.precisions.symbols)
        replies = await pipe.execute()
    followed = len(store.followed)
    await store.catch_up(replies[:followed])
    update_entries, position_raw, price, own_set, shared_set = replies[followed : followed + 5]
    if len(replies) == followed + 6:
        ledger.precisions.apply(replies[-1])
    f = ledger.precisions.of(symbol)
    factor = step_ms // base_ms
    bars = store.closed_before(symbol, end_ms, min((limit + 1) * factor, MAX_BASE_CANDLES))
    forming: Bar | None = None
    if end_ms is None:
        last_open = bars[-1].open_time_ms if bars else -1
        for _, fields in update_entries:
            if fields.get("symbol") == symbol and fields.get("interval") == base and fields.get("closed") == "false":
                newest = bar_of(fields)
                if newest is not None and newest.open_time_ms > last_open:
                    forming = newest
                break
    trades = await _ledger_trades(ledger)
    key = (symbol, wanted, limit, end_ms)
    drawn = _DRAWN.get(key)
    if drawn is None or not drawn.made_from(store, forming, f, trades):
        drawn = _draw(store, symbol, bars, forming, trades, base, step_ms, base_ms, limit, f)
        if len(_DRAWN) >= _DRAWN_LIMIT:
            _DRAWN.clear()
        _DRAWN[key] = drawn
    chosen = _symbol_set(settings, symbol, own_set, shared_set)
    parameters = chosen.parameters
    overlays = [o.as_dict() for o in settings.strategy_registry().get(chosen.strategy).overlays(parameters)]
    known = ledger.precisions.known(symbol)
    position = position_view(position_raw, price, f)
    # Built as JSON directly: validating 500 candle models again would cost more than the rest.
    return Response(
        orjson.dumps(
            {
                "symbol": symbol,
                "interval": wanted,
                "timeframe": wanted,
                "precision": known.to_dict() if known else None,
                "candles": drawn.candles,
                "markers": drawn.markers,
                "position": position.model_dump() if position is not None else None,
                "rsi_overbought": getattr(parameters, "RSI_OVERBOUGHT", None),
                "rsi_oversold": getattr(parameters, "RSI_OVERSOLD", None),
                "strategy": chosen.strategy,
                "parameters_version": chosen.version,
                "overlays": overlays,
            }
        ),
        media_type="application/json",
    )


def _draw(
    store: CandleStore,
    symbol: str,
    bars: list[Bar],
    forming: Bar | None,
    trades: list[LedgerTrade],
    base: str,
    step_ms: int,
    base_ms: int,
    limit: int,
    f: Precision,
) -> _Drawn:
    """The candles of the timeframe (the forming one last) with their indicator values, and the
    markers in their range."""
    grouped = aggregate([*bars, forming] if forming is not None else bars, step_ms, base_ms)
    # ``limit`` closed candles, and the forming one after them.
    grouped = grouped[-(limit + 1) :] if grouped and not grouped[-1][0].closed else grouped[-limit:]
    rows = [_cached_candle(symbol, step_ms, bar, store.indicators.get((symbol, last)), f) for bar, last in grouped]
    since = rows[0]["time_ms"] if rows else 0
    until = rows[-1]["time_ms"] if rows else None
    markers = [
        Marker(
            time_ms=_bucket(mark.time_ms, step_ms),
            kind="signal",
            side=mark.side,
            price=f.price(mark.price),
            text=mark.reason,
        )
        for mark in store.signals.get(symbol, [])
        if mark.interval == base and mark.time_ms >= since and (until is None or mark.time_ms < until + step_ms)
    ]
    markers += _trade_markers(trades, symbol, since, until, step_ms, base_ms, f)
    markers.sort(key=lambda marker: marker.time_ms)
    return _Drawn(
        store,
        store.version,
        forming,
        f,
        trades,
        orjson.Fragment(orjson.dumps(rows)),
        orjson.Fragment(orjson.dumps([m.model_dump() for m in markers])),
    )
