"""Writes market and account events to Redis.

Closed klines are published idempotently by open time: a Lua script appends a kline only when
its open time is after the last one published for that symbol, so back-fills, reconnects and
restarts can never put a duplicate or an out-of-order candle in the stream.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from services.market_data import metrics
from shared import streams
from shared.bus import stream_fields
from shared.codec import dumps, encode
from shared.events import Balances, ExecutionReport, Kline, MarketStatus, Ticker, make_event, now_ms

SERVICE = "market_data"

_APPEND_IF_NEWER = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
local open_time = tonumber(ARGV[2])
if open_time <= last then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


class Publisher:
    """Every Redis write of market_data."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def tickers(self, items: list[tuple[Ticker, int]], clock: dict[str, int]) -> None:
        """Publish prices (with their event times) and refresh last price, exchange clock
        (``clock``: the newest exchange time heard per symbol) and freshness: one round trip."""
        prices: dict[FieldT, EncodableT] = {}
        clocks: dict[FieldT, EncodableT] = {}
        fresh: dict[FieldT, EncodableT] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for ticker, event_time_ms in items:
                event = make_event(ticker, SERVICE, event_time_ms)
                stream = streams.ticker_stream(ticker.symbol)
                pipe.xadd(stream, stream_fields(event), maxlen=streams.maxlen_for(stream), approximate=True)
                prices[ticker.symbol] = format(ticker.price, "f")
                clocks[ticker.symbol] = clock.get(ticker.symbol, event_time_ms)
                fresh[ticker.symbol] = event.ts_init_ms
                metrics.PUBLISHED.labels("ticker", ticker.symbol).inc()
                metrics.LAST_MESSAGE.labels(ticker.symbol).set(event.ts_init_ms / 1000)
            if prices:
                pipe.hset(streams.MARKET_LAST_PRICE, mapping=prices)
                pipe.hset(streams.MARKET_CLOCK, mapping=clocks)
                pipe.hset(streams.MARKET_FRESHNESS, mapping=fresh)
                await pipe.execute()

    async def kline_updates(self, items: list[tuple[Kline, int]], clock: dict[str, int]) -> None:
        """Publish forming (or final) candles for the chart, not consumed by trading, and
        refresh clock and freshness of their symbols: one round trip."""
        clocks: dict[FieldT, EncodableT] = {}
        fresh: dict[FieldT, EncodableT] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for kline, event_time_ms in items:
                event = make_event(kline, SERVICE, event_time_ms)
                pipe.xadd(
                    streams.KLINE_UPDATES,
                    stream_fields(event),
                    maxlen=streams.maxlen_for(streams.KLINE_UPDATES),
                    approximate=True,
                )
                clocks[kline.symbol] = clock.get(kline.symbol, event_time_ms)
                fresh[kline.symbol] = event.ts_init_ms
            if clocks:
                pipe.hset(streams.MARKET_CLOCK, mapping=clocks)
                pipe.hset(streams.MARKET_FRESHNESS, mapping=fresh)
                await pipe.execute()

    async def closed_kline(self, kline: Kline, event_time_ms: int) -> bool:
        """Append a closed candle unless it (or a later one) is already there; True if appended."""
        return (await self.closed_klines([(kline, event_time_ms)]))[0]

    async def closed_klines(self, items: list[tuple[Kline, int]]) -> list[bool]:
        """``closed_kline`` for each of ``items`` in order, in one round trip (a back-fill page)."""
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for kline, event_time_ms in items:
                event = make_event(
                    kline,
                    SERVICE,
                    event_time_ms,
                    event_id=f"kline-{kline.symbol}-{kline.interval}-{kline.open_time_ms}",
                )
                stream = streams.kline_stream(kline.symbol)
                flat: list[str] = []
                for name, value in encode(event).items():
                    flat += [name, value]
                # EVAL, not the registered script: a pipeline would check it with SCRIPT EXISTS,
                # which market_data's ACL user is not granted.
                pipe.eval(
                    _APPEND_IF_NEWER,
                    2,
                    stream,
                    streams.KLINE_LAST_OPEN,
                    kline.symbol,
                    kline.open_time_ms,
                    streams.maxlen_for(stream),
                    *flat,
                )
            replies = await pipe.execute()
        added = [bool(reply) for reply in replies]
        for (kline, _), appended in zip(items, added, strict=True):
            if appended:
                metrics.PUBLISHED.labels("kline", kline.symbol).inc()
        return added

    async def advance_clock(self, symbol: str, exchange_time_ms: int) -> None:
        """Move the symbol's exchange clock forward to ``exchange_time_ms`` (never back), from an
        exchange reply received just now: the feed was heard, so freshness is refreshed too (the
        executor's feed-silence rule would otherwise refuse the signals of the candles back-filled
        after a restart longer than its bound, although they are as fresh as a live message)."""
        current = await self.redis.hget(streams.MARKET_CLOCK, symbol)
        async with self.redis.pipeline(transaction=False) as pipe:
            if current is None or int(current) < exchange_time_ms:
                pipe.hset(streams.MARKET_CLOCK, symbol, exchange_time_ms)
            pipe.hset(streams.MARKET_FRESHNESS, symbol, now_ms())
            await pipe.execute()

    async def last_closed_open_time(self, symbol: str) -> int | None:
        """Open time of the newest closed candle published for ``symbol``."""
        value = await self.redis.hget(streams.KLINE_LAST_OPEN, symbol)
        return None if value is None else int(value)

    async def execution(self, report: ExecutionReport, event_time_ms: int) -> None:
        """Publish an execution report to the symbol's executions stream."""
        event = make_event(report, SERVICE, event_time_ms)
        stream = streams.executions_stream(report.symbol)
        await self.redis.xadd(stream, stream_fields(event), maxlen=streams.maxlen_for(stream), approximate=True)
        metrics.PUBLISHED.labels("execution_report", report.symbol).inc()
        if report.trade_id >= 0:
            await self.redis.hset(streams.ACCOUNT_LAST_TRADE, report.symbol, report.trade_id)

    async def balances(self, balances: Balances, event_time_ms: int) -> None:
        """Publish balances and update the snapshot hash (a full snapshot replaces it)."""
        event = make_event(balances, SERVICE, event_time_ms)
        values: dict[FieldT, EncodableT] = {asset: dumps(amounts) for asset, amounts in balances.balances.items()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                streams.ACCOUNT_BALANCES,
                stream_fields(event),
                maxlen=streams.maxlen_for(streams.ACCOUNT_BALANCES),
                approximate=True,
            )
            if balances.full:
                pipe.delete(streams.ACCOUNT_SNAPSHOT)
            if values:
                pipe.hset(streams.ACCOUNT_SNAPSHOT, mapping=values)
            await pipe.execute()

    async def status(self, state: str, detail: str = "", symbol: str | None = None, attempt: int = 0) -> None:
        """Publish a connection/freshness change for the dashboard and the executor."""
        metrics.STATUS.labels(state).inc()
        event = make_event(MarketStatus(state=state, symbol=symbol, detail=detail, attempt=attempt), SERVICE, now_ms())
        await self.redis.xadd(
            streams.MARKET_STATUS,
            stream_fields(event),
            maxlen=streams.maxlen_for(streams.MARKET_STATUS),
            approximate=True,
        )
