"""The daily summary: when a market day ends, its profit figures, sent once.

Its clock is market time (``market:clock``, the exchange time of the newest market message,
the clock the executor judges signal ages by), not the wall clock: the summary is about market
days, so a replay at 60x gets one every 24 wall minutes and a live run one a day. A day ends at
``NOTIFY_SUMMARY_AT`` (UTC). The end of the last day summarised is kept in ``notifier:summary``
and moves only once the summary was delivered; a first start only notes the current day, and
after a long outage only the latest ended day is summarised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.messages import Notification, daily_summary
from shared import streams
from shared.aio import sleep_or_stop
from shared.precision import split_symbol
from shared.store import queries
from shared.trading.profit import Figures, TradeRecord, figures

logger = logging.getLogger(__name__)
DAY_MS = 86_400_000
CLOCK_POLL_S = 1.0  # how often the market clock is read (an I/O cadence, not a trading decision)

Deliver = Callable[[Notification, asyncio.Event], Awaitable[bool]]


def day_end(market_ms: int, at_minute: int) -> int:
    """The latest end of a market day at or before ``market_ms``: the instant whose UTC time of
    day is ``at_minute`` minutes after midnight."""
    offset = at_minute * 60_000
    return (market_ms - offset) // DAY_MS * DAY_MS + offset


def day_label(end_ms: int, at_minute: int) -> str:
    """``2025-05-20`` for a day ending at midnight UTC, else its start and end times."""
    start = datetime.fromtimestamp((end_ms - DAY_MS) / 1000, tz=UTC)
    if at_minute == 0:
        return start.strftime("%Y-%m-%d")
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def day_figures(records: list[TradeRecord], end_ms: int, prices: dict[str, Decimal | None]) -> tuple[Figures, Figures]:
    """Figures of the trades closed in the day ending at ``end_ms``, and of every trade up to then."""
    start = end_ms - DAY_MS
    day = [r for r in records if r.closed and r.exit_time_ms is not None and start <= r.exit_time_ms < end_ms]
    upto = [r for r in records if not r.closed or (r.exit_time_ms is not None and r.exit_time_ms < end_ms)]
    return figures(day, prices), figures(upto, prices)


class DailySummary:
    """Watches the market clock and sends each ended market day's summary once."""

    def __init__(self, redis: Redis, engine: AsyncEngine, symbols: list[str], at_minute: int, deliver: Deliver) -> None:
        self.redis = redis
        self.engine = engine
        self.symbols = symbols
        self.at_minute = at_minute
        self.deliver = deliver

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step(stop)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis or the ledger unavailable: try again later
                logger.warning("daily summary not ready: %s: %s", type(e).__name__, e)
                await sleep_or_stop(stop, 10 * CLOCK_POLL_S)
            await sleep_or_stop(stop, CLOCK_POLL_S)

    async def market_time(self) -> int | None:
        values = [int(v) for v in (await self.redis.hgetall(streams.MARKET_CLOCK)).values() if str(v).isdigit()]
        return max(values) if values else None

    async def step(self, stop: asyncio.Event) -> None:
        market_ms = await self.market_time()
        if market_ms is None:
            return
        end = day_end(market_ms, self.at_minute)
        last = await self.redis.get(streams.NOTIFIER_SUMMARY)
        if last is None:
            await self.redis.set(streams.NOTIFIER_SUMMARY, end)  # summaries start with the next day's end
            return
        if int(last) >= end:
            return
        if int(last) < end - DAY_MS:
            logger.info(
                "market days before %s ended while the notifier was away: only the latest is summarised",
                day_label(end, self.at_minute),
            )
        note = await self.compose(end)
        if await self.deliver(note, stop):
            await self.redis.set(streams.NOTIFIER_SUMMARY, end)

    async def compose(self, end: int) -> Notification:
        rows = await queries.trades_with_orders(self.engine)
        records = [queries.trade_record(position, orders) for position, orders in rows]
        raw = await self.redis.hmget(streams.MARKET_LAST_PRICE, self.symbols) if self.symbols else []
        prices = {symbol: _decimal(value) for symbol, value in zip(self.symbols, raw, strict=True)}
        day, total = day_figures(records, end, prices)
        quote = split_symbol(self.symbols[0])[1] if self.symbols else "USDT"
        return daily_summary(day_label(end, self.at_minute), end, day, total, quote)


def _decimal(value: object) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
