"""The chart's data kept in memory: closed candles, each candle's indicator values, the signals.

Filled once from the streams (the newest ``LOAD_*`` entries), then kept up to date from the
entries the event relay delivers, and before each answer from the few entries it has not
delivered yet (each stream's newest id is compared with the last one seen). A chart request
therefore reads no stream in full and decodes no entry that was seen before. Entries are read
field by field (they are flat text); one that does not parse is skipped.
"""

from __future__ import annotations

import asyncio
import gc
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from redis.asyncio import Redis

from services.api.follow import catch_up, entry_position
from shared import streams

LOAD_KLINES = 20_000  # the kline streams' MAXLEN
LOAD_DECISIONS_PER_SYMBOL = 3_000
LOAD_SIGNALS = 2_000
KEEP_SIGNALS = 2_000
CATCH_UP_LIMIT = 5_000

_entry = entry_position


@dataclass(frozen=True)
class Bar:
    """One candle as exchange text, with its prices as ``Decimal`` for aggregation."""

    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool


def bar_of(fields: dict[str, str]) -> Bar | None:
    try:
        return Bar(
            int(fields["open_time_ms"]),
            Decimal(fields["open"]),
            Decimal(fields["high"]),
            Decimal(fields["low"]),
            Decimal(fields["close"]),
            Decimal(fields["volume"]),
            fields.get("closed") in ("true", "True", "1"),
        )
    except (KeyError, ValueError, InvalidOperation):
        return None


@dataclass(frozen=True)
class SignalMark:
    time_ms: int
    side: str
    price: Decimal
    reason: str
    interval: str


class CandleStore:
    """Closed candles, indicator values and signals per symbol, for ``/api/candles``."""

    def __init__(self, redis: Redis, symbols: list[str], interval: str) -> None:
        self.redis = redis
        self.symbols = list(symbols)
        self.interval = interval
        self.bars: dict[str, list[Bar]] = {s: [] for s in symbols}
        self.indicators: dict[tuple[str, int], dict[str, Any]] = {}
        self.signals: dict[str, list[SignalMark]] = {s: [] for s in symbols}
        self.cursors: dict[str, tuple[int, int]] = {}
        # Counts the entries taken: what was made from the store is current while it is unchanged.
        self.version = 0
        self.loaded = False
        self._lock = asyncio.Lock()

    @property
    def followed(self) -> list[str]:
        return [streams.kline_stream(s) for s in self.symbols] + [streams.DECISIONS, streams.SIGNALS]

    async def load(self) -> None:
        """Read the streams once (the first request waits for it; the others then do not)."""
        if self.loaded:
            return
        async with self._lock:
            if not self.loaded:
                await self._load()
                self.loaded = True
                # Tens of thousands of candles kept for the process' life: out of the collector's
                # full passes, as what was loaded at start (see ``app.keep_out_of_full_collections``).
                gc.freeze()

    def ask_newest(self, pipe: Any) -> None:
        """Queue, on the caller's pipeline, the reads ``catch_up`` needs (one per followed stream)."""
        for stream in self.followed:
            pipe.xrevrange(stream, count=1)

    async def catch_up(self, newest: list[Any]) -> None:
        """Take the entries the relay has not delivered yet, given the replies of ``ask_newest``.

        Needs no lock: an entry is taken once whoever reads it first (see ``_take``).
        """
        await catch_up(
            self.redis, self.cursors, dict(zip(self.followed, newest, strict=True)), self._take, CATCH_UP_LIMIT
        )

    async def _load(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for symbol in self.symbols:
                pipe.xrevrange(streams.kline_stream(symbol), count=LOAD_KLINES)
            pipe.xrevrange(streams.DECISIONS, count=LOAD_DECISIONS_PER_SYMBOL * len(self.symbols))
            pipe.xrevrange(streams.SIGNALS, count=LOAD_SIGNALS)
            replies = await pipe.execute()
        for stream, entries in zip(self.followed, replies, strict=True):
            for entry_id, fields in reversed(entries):
                self._take(stream, entry_id, fields)

    def observe(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """An entry delivered by the relay (ignored until the first load, which reads it anyway)."""
        if self.loaded:
            self._take(stream, entry_id, fields)

    def _take(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """Take one entry of a followed stream (from the load, the relay or a catch-up), once."""
        if not streams.is_kline_stream(stream) and stream not in (streams.DECISIONS, streams.SIGNALS):
            return
        position = _entry(entry_id)
        if position <= self.cursors.get(stream, (0, -1)):
            return
        self.cursors[stream] = position
        self.version += 1
        kind = fields.get("type")
        symbol = fields.get("symbol", "")
        if kind == "kline" and symbol in self.bars and fields.get("interval") == self.interval:
            bar = bar_of(fields)
            if bar is not None:
                self._add_bar(self.bars[symbol], bar)
        elif kind == "decision" and symbol in self.bars and fields.get("interval", self.interval) == self.interval:
            try:
                self.indicators[(symbol, int(fields["candle_open_time_ms"]))] = orjson.loads(
                    fields.get("indicators") or "{}"
                )
            except (KeyError, ValueError, orjson.JSONDecodeError):
                return
            if len(self.indicators) > (LOAD_KLINES + 1000) * len(self.symbols):
                for key in list(self.indicators)[: len(self.indicators) // 10]:
                    del self.indicators[key]
        elif kind == "signal" and symbol in self.signals:
            try:
                mark = SignalMark(
                    int(fields["candle_open_time_ms"]),
                    fields["side"],
                    Decimal(fields["price"]),
                    fields.get("reason", ""),
                    fields.get("interval", ""),
                )
            except (KeyError, ValueError, InvalidOperation):
                return
            marks = self.signals[symbol]
            marks.append(mark)
            if len(marks) > KEEP_SIGNALS:
                del marks[: len(marks) - KEEP_SIGNALS]

    @staticmethod
    def _add_bar(bars: list[Bar], bar: Bar) -> None:
        if not bars or bar.open_time_ms > bars[-1].open_time_ms:
            bars.append(bar)
            if len(bars) > LOAD_KLINES:
                del bars[: len(bars) - LOAD_KLINES]
            return
        index = bisect_left([b.open_time_ms for b in bars[-50:]], bar.open_time_ms) + max(len(bars) - 50, 0)
        if index < len(bars) and bars[index].open_time_ms == bar.open_time_ms:
            bars[index] = bar
        else:
            bars.insert(index, bar)

    def closed_before(self, symbol: str, end_ms: int | None, count: int) -> list[Bar]:
        """The newest ``count`` closed candles of ``symbol`` opening before ``end_ms`` (all when None)."""
        bars = self.bars.get(symbol, [])
        stop = len(bars) if end_ms is None else bisect_left(bars, end_ms, key=lambda b: b.open_time_ms)
        return bars[max(stop - count, 0) : stop]


def aggregate(bars: list[Bar], step_ms: int, base_ms: int) -> list[tuple[Bar, int]]:
    """Candles of ``step_ms`` from candles of ``base_ms`` (UTC-aligned buckets), each with the open
    time of its last base candle; a bucket still missing base candles at the end is not closed."""
    if step_ms == base_ms:
        return [(bar, bar.open_time_ms) for bar in bars]
    out: list[tuple[Bar, int]] = []
    current: list[Bar] = []

    def flush() -> None:
        start = current[0].open_time_ms // step_ms * step_ms
        complete = current[-1].open_time_ms + base_ms >= start + step_ms and all(b.closed for b in current)
        out.append(
            (
                Bar(
                    start,
                    current[0].open,
                    max(b.high for b in current),
                    min(b.low for b in current),
                    current[-1].close,
                    sum((b.volume for b in current), Decimal(0)),
                    complete,
                ),
                current[-1].open_time_ms,
            )
        )

    for bar in bars:
        if current and bar.open_time_ms // step_ms != current[0].open_time_ms // step_ms:
            flush()
            current = []
        current.append(bar)
    if current:
        flush()
    return out
