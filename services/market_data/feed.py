"""Market streams: one combined connection for every symbol's miniTicker and kline.

Resilience: a watchdog reconnects a connection silent for ``MARKET_STALE_AFTER_S``; delays
double up to a cap and reset once a connection delivers; the connection is renewed before
Binance's 24 h cut; after every (re)connect, and whenever a closed candle arrives after a gap,
missed closed candles are back-filled over REST (idempotent by open time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from binance import AsyncClient

from services.market_data import binance_wire as wire
from services.market_data.backoff import Backoff
from services.market_data.config import MarketDataSettings
from services.market_data.publisher import Publisher
from shared.aio import quietly, sleep_or_stop
from shared.binance_client import close_client, close_socket, open_client, socket_manager

logger = logging.getLogger(__name__)


class Reconnect(Exception):
    """Leave the current connection and open a new one."""


class MarketFeed:
    """Publishes tickers and klines of ``settings.symbols`` until stopped."""

    def __init__(self, settings: MarketDataSettings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.interval = settings.timeframe
        self.interval_ms = settings.interval_ms
        self.backoff = Backoff(cap_s=settings.reconnect_max_delay_s)
        self.connections = 0

    def stream_names(self) -> list[str]:
        names = []
        for symbol in self.settings.symbols:
            names += [f"{symbol.lower()}@miniTicker", f"{symbol.lower()}@kline_{self.interval}"]
        return names

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, back-fill, relay; reconnect on any failure until ``stop``."""
        while not stop.is_set():
            client: AsyncClient | None = None
            try:
                client = await open_client(self.settings, signed=False)
                await self._connection(client, stop)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure means: reconnect
                reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                logger.warning("market stream down (%s); reconnect attempt=%d", reason, self.backoff.attempt + 1)
                await quietly(self.publisher.status("disconnected", reason, attempt=self.backoff.attempt + 1))
            finally:
                if client is not None:
                    await close_client(client)
            if not stop.is_set():
                await sleep_or_stop(stop, self.backoff.next_delay())

    async def _connection(self, client: AsyncClient, stop: asyncio.Event) -> None:
        manager = socket_manager(client, self.settings)
        socket = manager.multiplex_socket(self.stream_names())
        await socket.__aenter__()
        try:
            self.connections += 1
            opened = time.monotonic()
            logger.info("market stream connected connection=%d streams=%d", self.connections, len(self.stream_names()))
            await self.publisher.status("connected", f"connection {self.connections}")
            for symbol in self.settings.symbols:
                await self.backfill(client, symbol)
            while not stop.is_set():
                if time.monotonic() - opened > self.settings.max_connection_age_s:
                    raise Reconnect("renewing the connection before the exchange's 24 h cut")
                try:
                    message = await asyncio.wait_for(socket.recv(), self.settings.stale_after_s)
                except TimeoutError:
                    await self.publisher.status("stale", f"no market data for {self.settings.stale_after_s:g} s")
                    raise Reconnect("stream silent") from None
                if message is None:
                    continue
                await self.handle(client, message)
                self.backoff.reset()
        finally:
            await close_socket(socket)

    async def handle(self, client: AsyncClient, message: dict[str, Any]) -> None:
        """Relay one combined-stream message."""
        data = wire.unwrap(message)
        if data.get("e") == "serverShutdown":
            raise Reconnect("server shutdown announced")
        event_type = data.get("e")
        event_time = int(data.get("E", 0))
        if event_type == "24hrMiniTicker":
            await self.publisher.ticker(wire.ticker(data), event_time)
        elif event_type == "kline":
            kline = wire.kline(data)
            await self.publisher.kline_update(kline, event_time)
            if kline.closed:
                await self._closed(client, kline, event_time)

    async def _closed(self, client: AsyncClient, kline: Any, event_time: int) -> None:
        last = await self.publisher.last_closed_open_time(kline.symbol)
        if last is not None and kline.open_time_ms > last + self.interval_ms:
            logger.info("gap before %s %d: back-filling", kline.symbol, kline.open_time_ms)
            await self.backfill(client, kline.symbol, until_open_ms=kline.open_time_ms)
        await self.publisher.closed_kline(kline, event_time)

    async def backfill(self, client: AsyncClient, symbol: str, until_open_ms: int | None = None) -> int:
        """Publish closed candles missing since the last one published (or a warm-up window)."""
        last = await self.publisher.last_closed_open_time(symbol)
        published = 0
        if last is None:
            rows = await client.get_klines(
                symbol=symbol, interval=self.interval, limit=min(1000, self.settings.warmup_candles + 1)
            )
            pages = [rows]
            final = True
        else:
            pages, final = [], False
            start = last + self.interval_ms
            while True:
                rows = await client.get_klines(symbol=symbol, interval=self.interval, startTime=start, limit=1000)
                pages.append(rows)
                if len(rows) < 1000:
                    final = True
                    break
                start = int(rows[-1][0]) + self.interval_ms
        if final and until_open_ms is None and pages[-1]:
            # The forming candle's open time tells the strategy how old back-filled candles are.
            await self.publisher.advance_clock(symbol, int(pages[-1][-1][0]))
        for page_index, rows in enumerate(pages):
            for row_index, row in enumerate(rows):
                open_time = int(row[0])
                if until_open_ms is not None and open_time >= until_open_ms:
                    break
                is_forming = (
                    final and page_index == len(pages) - 1 and row_index == len(rows) - 1 and until_open_ms is None
                )
                if is_forming:
                    break
                if await self.publisher.closed_kline(wire.rest_kline(symbol, self.interval, row), int(row[6])):
                    published += 1
        if published:
            logger.info("back-filled symbol=%s candles=%d", symbol, published)
            await self.publisher.status("backfilled", f"{published} candles", symbol=symbol)
        return published
