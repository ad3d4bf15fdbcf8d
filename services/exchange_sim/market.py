"""The replayed market: one Replay per symbol, the rolling 24 h window, klines and averages.

Pure state driven by ``Market.advance(now)``; the app calls it from one timer loop.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from decimal import Decimal

from .candles import INTERVAL_MS, Candle, KlineValues, Series, aggregate
from .decimals import fmt8, q8
from .rolling import RollingWindow
from .trades import Tape
from .walk import MarketClock, rebase_offset, step_due, step_price, substeps, walk_points

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
AVG_PRICE_MINS = 5
_MONDAY_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; Binance weeks start on Monday


@dataclass(frozen=True, slots=True)
class Tick:
    """One walk step of one symbol: the new price and the native kline after it."""

    symbol: str
    index: int
    price: Decimal
    market_time: int
    values: KlineValues
    stats: tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None = None
    sequence: int = 0  # the book's update id after this step (consecutive per symbol)
    trade_qty: Decimal = Decimal(0)  # the walk trade of this step (0: none, e.g. the candle's close event)
    buyer_maker: bool = False  # the step moved the price down: a seller took the bid

    def mini_ticker(self) -> dict[str, object]:
        """The ``24hrMiniTicker`` payload as of this step (24 h window including this candle)."""
        o, h, low, v, q = self.stats or (self.price, self.price, self.price, Decimal(0), Decimal(0))
        return {
            "e": "24hrMiniTicker",
            "E": self.market_time,
            "s": self.symbol,
            "c": fmt8(self.price),
            "o": fmt8(o),
            "h": fmt8(h),
            "l": fmt8(low),
            "v": fmt8(v),
            "q": fmt8(q),
        }


class Replay:
    """Walks through the candles of one series; ``advance`` emits every step that is due."""

    def __init__(self, series: Series, tick: Decimal, offset_ms: int, n: int, start: int) -> None:
        self.series, self.tick, self.offset, self.n = series, tick, offset_ms, n
        self.finished = False
        self.price = series.candle(start - 1).close if start > 0 else series.candle(start).open
        self.last_time = self.shifted_open(start)
        self._enter(start)

    def _enter(self, index: int) -> None:
        self.index, self.step = index, 0
        self.candle: Candle = self.series.candle(index)
        self.points = walk_points(self.candle)
        self.high = self.low = self.candle.open

    def shifted_open(self, index: int) -> int:
        return self.series.open_times[index] + self.offset

    def next_due(self) -> int | None:
        """Market time of the next step, or None when the data has run out."""
        if self.finished:
            return None
        return step_due(self.shifted_open(self.index), self.series.interval_ms, self.step, self.n)

    def advance(self, now: int) -> list[Tick]:
        """Emit every step due at or before market time ``now``, in order, none skipped."""
        ticks: list[Tick] = []
        while (due := self.next_due()) is not None and due <= now:
            ticks.append(self._emit(due))
        return ticks

    @property
    def sequence(self) -> int:
        """Steps emitted so far, counted from the start of the file (each candle emits 4n + 1)."""
        return self.index * (4 * self.n + 1) + self.step

    def _emit(self, due: int) -> Tick:
        index, last_step = self.index, 4 * self.n
        self.last_time = due
        if self.step < last_step:
            before = self.price
            self.price = step_price(self.points, self.step, self.n, self.tick)
            self.high, self.low = max(self.high, self.price), min(self.low, self.price)
            self.step += 1
            values = self.forming()
            assert values is not None
            return Tick(
                self.series.symbol,
                index,
                self.price,
                due,
                values,
                sequence=self.sequence,
                trade_qty=q8(self.candle.volume / last_step),
                buyer_maker=self.price < before,
            )
        sequence = self.sequence + 1
        values = self.series.closed_values(index, self.offset)
        if index + 1 < len(self.series):
            self._enter(index + 1)
        else:
            self.finished = True
            log.warning("%s: candle data exhausted; the last price %s stays", self.series.symbol, self.price)
        return Tick(self.series.symbol, index, self.price, due, values, sequence=sequence)

    def forming(self) -> KlineValues | None:
        """The current candle after the steps walked so far (None before its open)."""
        if self.finished or self.step == 0:
            return None
        return self.series.partial_values(
            self.index, self.offset, self.candle, self.high, self.low, self.price, self.step - 1, 4 * self.n, False
        )

    def visible_index(self) -> int:
        """Index of the newest candle whose open has been replayed (-1 if none)."""
        if self.finished:
            return len(self.series) - 1
        return self.index if self.step > 0 else self.index - 1

    def values(self, index: int) -> KlineValues:
        """Kline values of a visible candle: partial for the forming one, full otherwise."""
        if index == self.index and not self.finished:
            forming = self.forming()
            if forming is not None:
                return forming
        return self.series.closed_values(index, self.offset)


def bucket_open(time_ms: int, interval: str) -> int:
    """Open time of the ``interval`` kline that contains ``time_ms``."""
    length = INTERVAL_MS[interval]
    if interval == "1w":
        return (time_ms - _MONDAY_MS) // length * length + _MONDAY_MS
    return time_ms // length * length


class Market:
    """All replayed symbols on one clock."""

    def __init__(self, series: list[Series], ticks: dict[str, Decimal], clock: MarketClock, history: int) -> None:
        self.clock = clock
        self.replays: dict[str, Replay] = {}
        self.windows: dict[str, RollingWindow] = {}
        self.tapes: dict[str, Tape] = {}
        self._closed_buckets: dict[tuple[str, str, int], KlineValues] = {}
        self._prefix: dict[tuple[str, str], tuple[int, int, KlineValues | None]] = {}
        now = clock.now()
        self.walked_ms = now  # market time the walk has been advanced to: the exchange's "now"
        for one in series:
            anchor_index = min(history, len(one) - 1)
            offset = rebase_offset(clock.start_ms, one.interval_ms, one.open_times[anchor_index])
            start = max(0, min(len(one) - 1, bisect_right(one.open_times, now - offset) - 1))
            replay = Replay(one, ticks[one.symbol], offset, substeps(one.interval_ms, clock.speed), start)
            self.replays[one.symbol] = replay
            window = RollingWindow()
            first = bisect_right(one.open_times, now - DAY_MS - offset)
            for index in range(first, start):
                window.add(one.closed_values(index, offset))
            self.windows[one.symbol] = window
            self.tapes[one.symbol] = Tape(one.symbol)

    def advance(self) -> list[Tick]:
        """Walk every symbol up to the clock's now; closed candles enter the 24 h windows."""
        now = self.walked_ms = max(self.walked_ms, self.clock.now())
        ticks: list[Tick] = []
        for symbol, replay in self.replays.items():
            window = self.windows[symbol]
            for tick in replay.advance(now):
                self.tapes[symbol].record(tick)
                window.expire(tick.market_time - DAY_MS)
                if tick.values.closed:
                    window.add(tick.values)
                # the window is summarised per step so every step's ticker shows that step's state
                ticks.append(replace(tick, stats=window.summary(None if tick.values.closed else tick.values)))
        ticks.sort(key=lambda t: t.market_time)
        return ticks

    def next_due(self) -> int | None:
        """Earliest market time at which some symbol has a step to emit."""
        dues = [d for r in self.replays.values() if (d := r.next_due()) is not None]
        return min(dues) if dues else None

    def price(self, symbol: str) -> Decimal:
        return self.replays[symbol].price

    def mini_ticker(self, symbol: str) -> dict[str, object]:
        """The current ``24hrMiniTicker`` payload of ``symbol`` (for ``!miniTicker@arr``)."""
        replay, now = self.replays[symbol], self.clock.now()
        window = self.windows[symbol]
        window.expire(now - DAY_MS)
        tick = Tick(
            symbol,
            replay.index,
            replay.price,
            now,
            replay.values(max(0, replay.visible_index())),
            window.summary(replay.forming()),
        )
        return tick.mini_ticker()

    def day_window(self, symbol: str) -> list[KlineValues]:
        """Klines of the rolling 24 h window, the forming one last (for ``ticker/24hr``)."""
        replay, now = self.replays[symbol], self.clock.now()
        window = self.windows[symbol]
        window.expire(now - DAY_MS)
        forming = replay.forming()
        return list(window.items) + ([forming] if forming else [])

    def avg_price(self, symbol: str) -> tuple[Decimal, int]:
        """Volume-weighted price over the last 5 minutes of market time, and the last step time."""
        replay, now = self.replays[symbol], self.clock.now()
        volume = quote = Decimal(0)
        index = replay.visible_index()
        while index >= 0 and replay.shifted_open(index) + replay.series.interval_ms > now - AVG_PRICE_MINS * 60_000:
            values = replay.values(index)
            volume, quote = volume + values.volume, quote + values.quote_volume
            index -= 1
        price = q8(quote / volume) if volume > 0 else replay.price
        return price, replay.last_time

    def kline_event(self, tick: Tick, interval: str) -> dict[str, object] | None:
        """The kline stream payload of ``interval`` after ``tick`` (None if not servable)."""
        replay = self.replays[tick.symbol]
        native = replay.series.interval_ms
        length = INTERVAL_MS.get(interval)
        if length is None or length % native:
            return None
        if length == native:
            return tick.values.stream_payload(tick.symbol, interval, tick.market_time)
        start = bucket_open(tick.values.open_time, interval)
        first = bisect_left(replay.series.open_times, start - replay.offset)
        key = (tick.symbol, interval)
        cached = self._prefix.get(key)
        if cached and cached[0] == start and cached[1] <= tick.index:
            upto, merged = cached[1], cached[2]
        else:
            upto, merged = first, None
        for index in range(upto, tick.index):
            closed = replay.series.closed_values(index, replay.offset)
            merged = closed if merged is None else aggregate([merged, closed], start, length, False)
        self._prefix[key] = (start, tick.index, merged)
        final = tick.values.closed and tick.values.open_time + native >= start + length
        parts = [merged, tick.values] if merged else [tick.values]
        values = aggregate(parts, start, length, final)
        return values.stream_payload(tick.symbol, interval, tick.market_time)

    def klines(self, symbol: str, interval: str, start: int | None, end: int | None, limit: int) -> list[KlineValues]:
        """Klines of ``interval`` opened at or before market now, Binance start/end/limit rules."""
        replay = self.replays[symbol]
        native = replay.series.interval_ms
        length = INTERVAL_MS.get(interval)
        if length is None or length % native:
            return []
        last = replay.visible_index()
        if last < 0:
            return []
        buckets: list[int] = []
        shifted = replay.shifted_open
        if start is not None:
            lo = bisect_left(replay.series.open_times, start - replay.offset)
            while lo <= last and len(buckets) < limit:
                b = bucket_open(shifted(lo), interval)
                if b >= start and (end is None or b <= end):
                    buckets.append(b)
                elif end is not None and b > end:
                    break
                lo = bisect_left(replay.series.open_times, b + length - replay.offset)
        else:
            hi = last
            if end is not None:
                hi = min(last, bisect_right(replay.series.open_times, end - replay.offset) - 1)
            while hi >= 0 and len(buckets) < limit:
                b = bucket_open(shifted(hi), interval)
                buckets.append(b)
                hi = bisect_left(replay.series.open_times, b - replay.offset) - 1
            buckets.reverse()
        return [self._bucket(replay, interval, b, length, last) for b in buckets]

    def _bucket(self, replay: Replay, interval: str, start: int, length: int, last: int) -> KlineValues:
        if length == replay.series.interval_ms:
            return replay.values(bisect_left(replay.series.open_times, start - replay.offset))
        key = (replay.series.symbol, interval, start)
        if key in self._closed_buckets:
            return self._closed_buckets[key]
        first = bisect_left(replay.series.open_times, start - replay.offset)
        stop = min(last, bisect_left(replay.series.open_times, start + length - replay.offset) - 1)
        parts = [replay.values(i) for i in range(first, stop + 1)]
        closed = parts[-1].closed and self.clock.now() >= start + length
        values = aggregate(parts, start, length, closed)
        if closed:
            self._closed_buckets[key] = values
        return values

    def snapshot(self) -> dict[str, object]:
        """Market time and per-symbol replay position, for the admin state endpoint."""
        return {
            "market_time": self.clock.now(),
            "symbols": {
                symbol: {
                    "price": fmt8(r.price),
                    "candle_index": r.index,
                    "step": r.step,
                    "finished": r.finished,
                    "candle_open_time": r.shifted_open(r.index),
                    "interval": r.series.interval,
                    "last_step_time": r.last_time,
                    "candles": len(r.series),
                }
                for symbol, r in self.replays.items()
            },
        }
