"""Public REST endpoints: ping, time, exchangeInfo, depth, trades, klines, tickers, avgPrice."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import orjson

from . import errors
from .candles import VALID_INTERVALS
from .decimals import fmt8
from .market import AVG_PRICE_MINS
from .params import Params
from .rest import Route
from .symbols import SYMBOL_PERMISSIONS, SYMBOL_STATUSES

if TYPE_CHECKING:
    from .app import Simulator

DEFAULT_PERMISSIONS = ("SPOT", "MARGIN", "LEVERAGED")  # what exchangeInfo shows without ``permissions``
UTC_ZONES = ("0", "+0", "-0", "0:00", "00:00", "+00:00", "-00:00", "+0:00")


def ping(sim: Simulator, params: Params) -> object:
    return {}


def server_time(sim: Simulator, params: Params) -> object:
    return {"serverTime": sim.server_time()}


def exchange_info(sim: Simulator, params: Params) -> object:
    """All symbols, or the ones named by ``symbol`` / ``symbols`` (unknown ones are ``-1121``),
    filtered by ``symbolStatus`` and ``permissions``; ``showPermissionSets=false`` empties the sets."""
    symbol, symbols = params.get("symbol"), params.symbols()
    status, permissions = params.get("symbolStatus"), _permissions(params)
    if symbol is not None and symbols is not None:
        raise errors.bad_combo()
    if (symbol is not None or symbols is not None) and (status is not None or permissions is not None):
        raise errors.bad_combo()
    if status is not None and status not in SYMBOL_STATUSES:
        raise errors.ApiError(-1122, "Invalid symbolStatus.")
    names = [symbol] if symbol is not None else symbols if symbols is not None else list(sim.specs)
    if any(name not in sim.specs for name in names):
        raise errors.bad_symbol()
    wanted = set(permissions or DEFAULT_PERMISSIONS)
    rows = [sim.specs[name].exchange_info(params.flag("showPermissionSets", True)) for name in names]
    rows = [
        r
        for r in rows
        if (status is None or r["status"] == status)
        and (symbol is not None or symbols is not None or wanted & set(SYMBOL_PERMISSIONS))
    ]
    return {
        "timezone": "UTC",
        "serverTime": sim.server_time(),
        "rateLimits": sim.limiter.rate_limits(),
        "exchangeFilters": [],
        "symbols": rows,
    }


def _permissions(params: Params) -> list[str] | None:
    """``permissions``: one name (``SPOT``) or a JSON array of names."""
    value = params.get("permissions")
    if value is None:
        return None
    if not value.startswith("["):
        return [value]
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        raise errors.invalid_value("permissions")
    return parsed


def klines(sim: Simulator, params: Params) -> object:
    """Klines whose open time is not after market now; the newest may still be forming."""
    symbol = params.require("symbol")
    interval = params.require("interval")
    if symbol not in sim.specs:
        raise errors.bad_symbol()
    if interval not in VALID_INTERVALS:
        raise errors.bad_interval()
    zone = params.get("timeZone")
    if zone is not None and zone not in UTC_ZONES:
        raise errors.invalid_value("timeZone")
    start, end, limit = params.time_ms("startTime", round_up=True), params.time_ms("endTime"), params.limit()
    sim.sync_market()
    rows = [k.rest_row() for k in sim.market.klines(symbol, interval, start, end, limit)]
    if params.micros:  # open time in µs; the close time is the last µs of the kline
        for row in rows:
            row[0], row[6] = int(row[0]) * 1000, int(row[6]) * 1000 + 999  # type: ignore[call-overload]  # ints in rest_row()
    return rows


def ticker_price(sim: Simulator, params: Params) -> object:
    """One ``{symbol, price}`` for ``symbol``, else a list (``symbols`` or all)."""
    symbol, symbols = params.get("symbol"), params.symbols()
    if symbol is not None and symbols is not None:
        raise errors.bad_combo()
    sim.sync_market()
    names = [symbol] if symbol is not None else symbols if symbols is not None else list(sim.specs)
    if any(name not in sim.specs for name in names):
        raise errors.bad_symbol()
    rows = [{"symbol": name, "price": fmt8(sim.market.price(name))} for name in names]
    return rows[0] if symbol is not None else rows


def avg_price(sim: Simulator, params: Params) -> object:
    symbol = params.require("symbol")
    if symbol not in sim.specs:
        raise errors.bad_symbol()
    sim.sync_market()
    price, close_time = sim.market.avg_price(symbol)
    return {"mins": AVG_PRICE_MINS, "price": fmt8(price), "closeTime": close_time}


def ticker_24hr(sim: Simulator, params: Params) -> object:
    """Rolling 24 h statistics of the replayed candles (``type=FULL`` or ``MINI``)."""
    symbol, symbols = params.get("symbol"), params.symbols()
    if symbol is not None and symbols is not None:
        raise errors.bad_combo()
    kind = params.get("type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise errors.ApiError(-1139, "Invalid ticker type.")
    sim.sync_market()
    names = [symbol] if symbol is not None else symbols if symbols is not None else list(sim.specs)
    if any(name not in sim.specs for name in names):
        raise errors.bad_symbol()
    rows = [_day_stats(sim, name, kind == "MINI") for name in names]
    return rows[0] if symbol is not None else rows


def _day_stats(sim: Simulator, symbol: str, mini: bool) -> dict[str, object]:
    window, last = sim.market.day_window(symbol), sim.market.price(symbol)
    now = sim.market.clock.now()
    open_ = window[0].open if window else last
    high = max((k.high for k in window), default=last)
    low = min((k.low for k in window), default=last)
    volume = sum((k.volume for k in window), Decimal(0))
    quote = sum((k.quote_volume for k in window), Decimal(0))
    stats: dict[str, object] = {
        "symbol": symbol,
        "openPrice": fmt8(open_),
        "highPrice": fmt8(high),
        "lowPrice": fmt8(low),
        "lastPrice": fmt8(last),
        "volume": fmt8(volume),
        "quoteVolume": fmt8(quote),
        "openTime": window[0].open_time if window else now,
        "closeTime": now,
    }
    traded = [k for k in window if k.trades]
    ids = {
        "firstId": traded[0].first_trade_id if traded else -1,
        "lastId": traded[-1].last_trade_id if traded else -1,
        "count": sum(k.trades for k in window),
    }
    if mini:
        return {**stats, **ids}
    change = last - open_
    trade, top = sim.market.tapes[symbol].latest(), sim.book(symbol).book_ticker()
    return {
        "symbol": symbol,
        "priceChange": fmt8(change),
        "priceChangePercent": f"{(change / open_ * 100 if open_ else Decimal(0)):.3f}",
        "weightedAvgPrice": fmt8(quote / volume if volume else last),
        "prevClosePrice": fmt8(open_),
        "lastPrice": fmt8(last),
        "lastQty": fmt8(trade.qty if trade else Decimal(0)),
        "bidPrice": top["bidPrice"],
        "bidQty": top["bidQty"],
        "askPrice": top["askPrice"],
        "askQty": top["askQty"],
        **{k: v for k, v in stats.items() if k != "symbol"},
        **ids,
    }


def _known(sim: Simulator, params: Params) -> str:
    symbol = params.require("symbol")
    if symbol not in sim.specs:
        raise errors.bad_symbol()
    return symbol


def depth(sim: Simulator, params: Params) -> object:
    """The synthetic book around the walk price (at most ``DEPTH_LEVELS`` levels a side)."""
    symbol = _known(sim, params)
    limit = params.limit(default=100, maximum=5000)
    status = params.get("symbolStatus")
    if status is not None:
        if status not in SYMBOL_STATUSES:
            raise errors.ApiError(-1122, "Invalid symbolStatus.")
        if status != "TRADING":
            raise errors.ApiError(-1220, "The symbol's status does not match the requested symbolStatus.")
    sim.sync_market()
    return sim.book(symbol).depth(limit)


def _depth_weight(params: Params) -> int:
    """Binance's weight by limit: 1-100: 5, 101-500: 25, 501-1000: 50, 1001-5000: 250."""
    try:
        limit = min(int(params.get("limit") or 100), 5000)
    except ValueError:
        limit = 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def book_ticker(sim: Simulator, params: Params) -> object:
    symbol, symbols = params.get("symbol"), params.symbols()
    if symbol is not None and symbols is not None:
        raise errors.bad_combo()
    sim.sync_market()
    names = [symbol] if symbol is not None else symbols if symbols is not None else list(sim.specs)
    if any(name not in sim.specs for name in names):
        raise errors.bad_symbol()
    rows = [sim.book(name).book_ticker() for name in names]
    return rows[0] if symbol is not None else rows


def recent_trades(sim: Simulator, params: Params) -> object:
    symbol = _known(sim, params)
    sim.sync_market()
    return [t.rest_row() for t in sim.market.tapes[symbol].select(params.limit(500, 1000))]


def historical_trades(sim: Simulator, params: Params) -> object:
    symbol = _known(sim, params)
    sim.sync_market()
    return [t.rest_row() for t in sim.market.tapes[symbol].select(params.limit(500, 1000), params.long("fromId"))]


def agg_trades(sim: Simulator, params: Params) -> object:
    symbol = _known(sim, params)
    from_id = params.long("fromId")
    start, end = params.time_ms("startTime", round_up=True), params.time_ms("endTime")
    if from_id is not None and (start is not None or end is not None):
        raise errors.bad_combo()
    sim.sync_market()
    return [t.agg_row() for t in sim.market.tapes[symbol].select(params.limit(500, 1000), from_id, start, end)]


def _ticker_weight(params: Params) -> int:
    return 2 if params.has("symbol") else 4


ROUTES = [
    Route("GET", "ping", ping, 1),
    Route("GET", "time", server_time, 1),
    Route("GET", "exchangeInfo", exchange_info, 20),
    Route("GET", "klines", klines, 2),
    Route("GET", "uiKlines", klines, 2),
    Route("GET", "ticker/price", ticker_price, _ticker_weight),
    Route("GET", "avgPrice", avg_price, 2),
    Route("GET", "ticker/24hr", ticker_24hr, lambda p: 2 if p.has("symbol") else 80),
    Route("GET", "depth", depth, _depth_weight),
    Route("GET", "ticker/bookTicker", book_ticker, _ticker_weight),
    Route("GET", "trades", recent_trades, 25),
    Route("GET", "historicalTrades", historical_trades, 25),
    Route("GET", "aggTrades", agg_trades, 4),
]
