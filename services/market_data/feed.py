"""Market streams: tickers and klines of every symbol over as few combined connections as allowed.

Which streams and how many connections: ``subscriptions`` (the all-market ``!miniTicker@arr``
past a few symbols; SUBSCRIBE messages, not a URL naming every stream). Per received message
one pipelined Redis write: the tickers of the message; forming klines for the chart are
coalesced (the latest per symbol, written every ``MARKET_KLINE_UPDATE_S``); closed klines go
out as they arrive, idempotent by open time, with the gap back-fill of before.

Resilience: a watchdog reconnects when no message arrives for ``MARKET_STALE_AFTER_S``; delays
double up to a cap and reset once a connection delivers; the connections are renewed before
Binance's 24 h cut; after every (re)connect, and whenever a closed candle arrives after a gap,
missed closed candles are back-filled over REST (idempotent by open time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from binance import AsyncClient

from services.market_data import binance_wire as wire
from services.market_data.config import MarketDataSettings
from services.market_data.publisher import Publisher
from services.market_data.subscriptions import MarketSocket, connection_plan, stream_names, uses_array
from shared.aio import quietly, sleep_or_stop
from shared.backoff import Backoff
from shared.binance_client import close_client, open_client
from shared.events import Kline
from shared.request_weight import WeightBudget

logger = logging.getLogger(__name__)

# Back-fill requests in flight at once: enough to hide the request latency, few enough that
# one slow answer does not hold many connections of the client's pool.
BACKFILL_CONCURRENCY = 16


class Reconnect(Exception):
    """Leave the current connections and open new ones."""


class MarketFeed:
    """Publishes tickers and klines of ``settings.symbols`` until stopped."""

    def __init__(self, settings: MarketDataSettings, publisher: Publisher, budget: WeightBudget | None = None) -> None:
        self.settings = settings
        self.publisher = publisher
        self.budget = budget or WeightBudget(settings.request_weight_share)
        self.interval = settings.timeframe
        self.interval_ms = settings.interval_ms
        self.backoff = Backoff(cap_s=settings.reconnect_max_delay_s)
        self.connections = 0
        self.symbols = set(settings.symbols)
        self.array = uses_array(len(settings.symbols), settings.ticker_stream, settings.array_above)
        self.clock: dict[str, int] = {}  # the newest exchange event time heard per symbol
        self.forming: dict[str, tuple[Kline, int]] = {}  # kline updates not yet written
        # Per symbol, the gap back-fill (then its closed candle) running in its own task: the
        # tickers of every symbol go on meanwhile; later closed candles of the symbol queue behind it.
        self.repairs: dict[str, asyncio.Task[None]] = {}
        self._inbox: asyncio.Queue[dict[str, Any] | BaseException] | None = None

    def stream_names(self) -> list[str]:
        return stream_names(self.settings.symbols, self.interval, self.array)

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
        base = self.settings.binance_urls()["streams"]
        sockets = [MarketSocket(base, names) for names in connection_plan(self.stream_names())]
        inbox: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._inbox = inbox
        tasks: list[asyncio.Task[None]] = []
        try:
            for socket in sockets:
                await socket.open()
            tasks = [asyncio.create_task(self._read(socket, inbox)) for socket in sockets]
            tasks.append(asyncio.create_task(self._flush_updates()))
            self.connections += 1
            opened = time.monotonic()
            logger.info(
                "market stream connected connection=%d sockets=%d streams=%d array=%s",
                self.connections,
                len(sockets),
                len(self.stream_names()),
                self.array,
            )
            await self.publisher.status("connected", f"connection {self.connections}")
            await self.backfill_all(client)
            while not stop.is_set():
                if time.monotonic() - opened > self.settings.max_connection_age_s:
                    raise Reconnect("renewing the connection before the exchange's 24 h cut")
                try:
                    message = await asyncio.wait_for(inbox.get(), self.settings.stale_after_s)
                except TimeoutError:
                    await self.publisher.status("stale", f"no market data for {self.settings.stale_after_s:g} s")
                    raise Reconnect("stream silent") from None
                if isinstance(message, BaseException):
                    raise message
                await self.handle(client, message)
                self.backoff.reset()
        finally:
            tasks += self.repairs.values()
            self.repairs = {}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for socket in sockets:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(socket.close(), 5)

    @staticmethod
    async def _read(socket: MarketSocket, inbox: asyncio.Queue[dict[str, Any] | BaseException]) -> None:
        try:
            async for message in socket.messages():
                inbox.put_nowait(message)
            inbox.put_nowait(Reconnect("connection closed by the exchange"))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - handed to the connection loop, which reconnects
            inbox.put_nowait(e)

    async def _flush_updates(self) -> None:
        """Write the coalesced kline updates every ``MARKET_KLINE_UPDATE_S``."""
        while True:
            await asyncio.sleep(self.settings.kline_update_s)
            if self.forming:
                pending, self.forming = list(self.forming.values()), {}
                await self.publisher.kline_updates(pending, self.clock)

    def _heard(self, symbol: str, event_time: int) -> None:
        if event_time > self.clock.get(symbol, -1):
            self.clock[symbol] = event_time

    async def handle(self, client: AsyncClient, message: dict[str, Any]) -> None:
        """Relay one combined-stream message."""
        data: Any = wire.unwrap(message)
        if isinstance(data, list):
            await self._tickers(data)
            return
        event_type = data.get("e")
        if event_type == "serverShutdown":
            raise Reconnect("server shutdown announced")
        if event_type == "24hrMiniTicker":
            await self._tickers([data])
        elif event_type == "kline":
            kline = wire.kline(data)
            event_time = int(data.get("E", 0))
            self._heard(kline.symbol, event_time)
            self.forming[kline.symbol] = (kline, event_time)
            if kline.closed:
                await self._closed(client, kline, event_time)

    async def _tickers(self, items: list[dict[str, Any]]) -> None:
        """The mini tickers of our symbols, in one write. A repeated price is published too: the
        executor ignores a price that arrives while its entry is still settling or from before
        the entry order left, and counts on the next one (the same price, held) to act."""
        fresh = []
        for data in items:
            symbol, price = data.get("s"), data.get("c")
            if symbol not in self.symbols or not isinstance(price, str):
                continue
            event_time = int(data.get("E", 0))
            self._heard(symbol, event_time)
            fresh.append((wire.ticker(data), event_time))
        if fresh:
            await self.publisher.tickers(fresh, self.clock)

    async def _closed(self, client: AsyncClient, kline: Kline, event_time: int) -> None:
        before = self.repairs.get(kline.symbol)
        if before is not None and before.done():
            before = None
        if before is None:
            last = await self.publisher.last_closed_open_time(kline.symbol)
            if last is None or kline.open_time_ms <= last + self.interval_ms:
                await self.publisher.closed_kline(kline, event_time)
                return
            logger.info("gap before %s %d: back-filling", kline.symbol, kline.open_time_ms)
        self.repairs[kline.symbol] = asyncio.create_task(self._repair(client, kline, event_time, before))

    async def _repair(
        self, client: AsyncClient, kline: Kline, event_time: int, before: asyncio.Task[None] | None
    ) -> None:
        """Back-fill the gap before ``kline`` (after the symbol's previous repair), then publish it.
        A failure goes to the connection loop, which reconnects and back-fills again."""
        try:
            if before is not None:
                await before
            last = await self.publisher.last_closed_open_time(kline.symbol)
            if last is not None and kline.open_time_ms > last + self.interval_ms:
                await self.backfill(client, kline.symbol, until_open_ms=kline.open_time_ms)
            await self.publisher.closed_kline(kline, event_time)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - handed to the connection loop, which reconnects
            if self._inbox is not None:
                self._inbox.put_nowait(e)

    async def backfill_all(self, client: AsyncClient) -> None:
        """``backfill`` every symbol, ``BACKFILL_CONCURRENCY`` at a time: at market scale one after
        the other is 500 request latencies before the last symbol has its history. Live messages
        wait in the inbox meanwhile (a closed candle published before its symbol's back-fill
        would make the older candles too old to append)."""
        gate = asyncio.Semaphore(BACKFILL_CONCURRENCY)

        async def one(symbol: str) -> None:
            async with gate:
                await self.backfill(client, symbol)

        await asyncio.gather(*(one(symbol) for symbol in self.settings.symbols))

    async def _klines(self, client: AsyncClient, **params: Any) -> Any:
        """``GET /api/v3/klines`` (weight 2) within the service's request-weight share, ahead of
        routine reads (the strategy waits for these candles)."""
        await self.budget.spend(2, urgent=True)
        try:
            return await client.get_klines(interval=self.interval, **params)
        finally:
            self.budget.observe_response(getattr(client, "response", None))

    async def backfill(self, client: AsyncClient, symbol: str, until_open_ms: int | None = None) -> int:
        """Publish closed candles missing since the last one published (or a warm-up window)."""
        last = await self.publisher.last_closed_open_time(symbol)
        if last is None:
            rows = await self._klines(client, symbol=symbol, limit=min(1000, self.settings.warmup_candles + 1))
            pages = [rows]
            final = True
        else:
            pages, final = [], False
            start = last + self.interval_ms
            while True:
                rows = await self._klines(client, symbol=symbol, startTime=start, limit=1000)
                pages.append(rows)
                if len(rows) < 1000:
                    final = True
                    break
                start = int(rows[-1][0]) + self.interval_ms
        if final and until_open_ms is None and pages[-1]:
            # The forming candle's open time tells the strategy how old back-filled candles are.
            await self.publisher.advance_clock(symbol, int(pages[-1][-1][0]))
        candles: list[tuple[Kline, int]] = []
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
                candles.append((wire.rest_kline(symbol, self.interval, row), int(row[6])))
        published = sum(await self.publisher.closed_klines(candles))
        if published:
            logger.info("back-filled symbol=%s candles=%d", symbol, published)
            await self.publisher.status("backfilled", f"{published} candles", symbol=symbol)
        return published
