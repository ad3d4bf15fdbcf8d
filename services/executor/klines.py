"""The closed candles of a symbol as its kline stream holds them, and the stops' ATR of one of them.

The kline stream holds closed candles only, one entry per open time (``market_data`` appends
idempotently), newest last. The ATR a stop uses (``shared.trading.stops.window_atr``) is a
function of the ``atr_window`` candles up to the one it belongs to, so it is computed only when
every one of them is there, each right after the other: a gap would give another number than the
backtester's for the same candle, and no number is better than a different one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from redis.asyncio import Redis

from shared import streams
from shared.codec import DecodeError, decode
from shared.events import Kline
from shared.trading.stops import atr_window, window_atr

logger = logging.getLogger(__name__)

# Most klines read at once (a restart after a long outage reads back this far at most).
MAX_KLINES = 2000
# Key under which an entry's stop ATR is kept with the signal's indicators on its position.
STOP_ATR_KEY = "stop_atr"


async def closed_klines(redis: Redis, symbol: str, count: int) -> list[Kline]:
    """The newest ``count`` (at most ``MAX_KLINES``) closed klines of ``symbol``, oldest first,
    one per open time."""
    entries = await redis.xrevrange(streams.kline_stream(symbol), count=max(1, min(MAX_KLINES, count)))
    by_open: dict[int, Kline] = {}
    for entry_id, fields in entries or ():
        try:
            kline = decode(fields).payload
        except DecodeError as e:
            logger.warning("undecodable kline %s of %s: %s", entry_id, symbol, e)
            continue
        if isinstance(kline, Kline) and kline.closed:
            by_open.setdefault(kline.open_time_ms, kline)
    return [by_open[t] for t in sorted(by_open)]


def atr_at(klines: Sequence[Kline], index: int, period: int, interval_ms: int) -> Decimal | None:
    """The stops' ATR(``period``) at ``klines[index]`` (oldest first), or None when the window
    of candles up to it is not complete and contiguous in ``klines``."""
    size = atr_window(period)
    start = index + 1 - size
    if start < 0 or index >= len(klines):
        return None
    window = klines[start : index + 1]
    first = window[0].open_time_ms
    if any(k.open_time_ms != first + i * interval_ms for i, k in enumerate(window)):
        return None
    return window_atr(
        [float(k.high) for k in window], [float(k.low) for k in window], [float(k.close) for k in window], period
    )


async def candle_atr(
    redis: Redis, symbol: str, candle_open_ms: int, period: int, interval_ms: int, newest_open_ms: int | None
) -> Decimal | None:
    """The stops' ATR of the candle opening at ``candle_open_ms``, read from the kline stream
    (``newest_open_ms``: the open time of the newest candle likely there, to read back far enough)."""
    behind = 0 if newest_open_ms is None else max(0, (newest_open_ms - candle_open_ms) // interval_ms)
    klines = await closed_klines(redis, symbol, atr_window(period) + behind + 2)
    for index in range(len(klines) - 1, -1, -1):
        if klines[index].open_time_ms == candle_open_ms:
            return atr_at(klines, index, period, interval_ms)
    return None


def entry_atr(indicators: dict[str, object] | None) -> Decimal | None:
    """The stop ATR an entry recorded with its position's indicators (None when it has none)."""
    value = (indicators or {}).get(STOP_ATR_KEY)
    if not isinstance(value, int | float) or value <= 0:
        return None
    return Decimal(repr(float(value)))
