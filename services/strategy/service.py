"""strategy: closed klines in, decision records and signals out.

Each replica owns some symbols (leases) and is the only reader of their kline streams, so a
symbol's candles are evaluated in order by one process. A symbol's window is rebuilt from the
candles its consumer group already handled, so a restart resumes without replaying history.
Each symbol's strategy (``STRATEGY`` / ``STRATEGIES``, or the dashboard's switch) reads
indicators kept up to date incrementally per closed candle (``IndicatorTrack``), never a
recomputation of the window.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from services.strategy import metrics
from services.strategy.config import StrategySettings
from services.strategy.outbox import Outbox, Output
from services.strategy.window import CandleWindow
from shared import streams
from shared.aio import sleep_or_stop
from shared.bus import AckLater, Consumer, publish_atomically
from shared.codec import DecodeError, decode, dumps
from shared.control import ControlReader
from shared.events import Condition, Decision, Envelope, Kline, Signal, make_event
from shared.leases import SymbolLeases
from shared.parameter_sets import SymbolSet
from shared.trading import rules
from shared.trading.incremental import IndicatorSpec
from shared.trading.strategies import Row, Strategy
from shared.trading.strategies.track import IndicatorTrack
from shared.trading.vocabulary import Side

logger = logging.getLogger(__name__)
SERVICE = "strategy"
OUTBOX_MAX_EVENTS = 1_000  # a whole-market minute close's 500 decisions fit in one transaction


class StrategyService:
    """Evaluates the rules on every closed candle of the symbols this replica owns."""

    def __init__(self, settings: StrategySettings, redis: Redis, instance: str) -> None:
        self.settings = settings
        self.redis = redis
        self.instance = instance
        self.interval_ms = settings.interval_ms
        # Each symbol's strategy and parameter set, followed on control:parameters (a switch included).
        self.registry = settings.strategy_registry()
        self.control = ControlReader(
            redis,
            key=settings.signing_key(),
            history=settings.history(),
            sets=settings.initial_sets(),
            registry=self.registry,
        )
        self.windows: dict[str, CandleWindow] = {}
        self.tracks: dict[str, IndicatorTrack] = {}
        # History candles whose decision waits for the next evaluation, with their (pending) entry ids.
        self.deferred: dict[str, list[tuple[Kline, str | None]]] = {}
        # The round's decisions and signals, published together when the round ends.
        self.outbox = Outbox()
        self.consumer = Consumer(redis, group=streams.GROUP_STRATEGY, name=f"{SERVICE}-{instance}", handler=self.handle)
        self.leases = SymbolLeases(redis, SERVICE, instance, settings.symbols, self._acquired, self._lost)

    def strategy(self, symbol: str) -> Strategy:
        """The strategy ``symbol`` runs now."""
        return self.registry.get(self.control.set_of(symbol).strategy)

    async def run(self, stop: asyncio.Event) -> None:
        await self.control.load()
        for symbol, chosen in self.control.sets.items():
            logger.info("strategy of %s: %s (parameters version %d)", symbol, chosen.strategy, chosen.version)
        keep_alive = asyncio.create_task(self.leases.keep_alive(stop))
        follow = asyncio.create_task(self.control.follow(stop))
        try:
            while not stop.is_set():
                try:
                    await self.leases.rebalance()
                    if self.consumer.streams:
                        await self.poll_once()
                    else:
                        await sleep_or_stop(stop, 0.5)
                except (RedisError, OSError) as e:
                    # Redis restarting or unreachable: keep the windows and try again.
                    logger.warning("strategy round failed (%s); retrying", e)
                    await sleep_or_stop(stop, 1.0)
        finally:
            # Also when a round raised: renewing the leases of a service that stopped working
            # would keep its symbols from every other replica.
            keep_alive.cancel()
            follow.cancel()
            await asyncio.gather(keep_alive, follow, return_exceptions=True)
            await self.leases.release_all()

    async def poll_once(self) -> None:
        """One consumer round, then what its candles decided in one transaction (``Outbox``)."""
        try:
            await self.consumer.poll_once()
            await self._publish_queued()
        except Exception:
            # Whatever was queued is not published: its entries are pending and read again first.
            self.outbox.discard()
            self.consumer.read_pending_again()
            raise

    async def _publish_queued(self) -> None:
        published = await self.outbox.flush(self.redis, self.windows)
        for output in published:
            metrics.published(output.items, output.kline_entry_id)
        await self._remember_signals([item for output in published for item in output.items])

    async def _acquired(self, symbol: str) -> None:
        self.windows[symbol] = await self._rebuild_window(symbol)
        self.tracks.pop(symbol, None)
        self._track(symbol, self.windows[symbol])
        self.consumer.add_stream(streams.kline_stream(symbol), take_over=True)

    async def _lost(self, symbol: str) -> None:
        self.consumer.remove_stream(streams.kline_stream(symbol))
        self.windows.pop(symbol, None)
        self.tracks.pop(symbol, None)
        self.deferred.pop(symbol, None)

    async def _rebuild_window(self, symbol: str) -> CandleWindow:
        window = CandleWindow(self.settings.window_candles)
        stream = streams.kline_stream(symbol)
        last_delivered = "0-0"
        try:
            for group in await self.redis.xinfo_groups(stream):
                if group["name"] == streams.GROUP_STRATEGY:
                    last_delivered = group["last-delivered-id"]
        except Exception:  # noqa: BLE001 - no stream yet: nothing handled yet
            return window
        if last_delivered == "0-0":
            return window
        pending = {
            item["message_id"]
            for item in await self.redis.xpending_range(stream, streams.GROUP_STRATEGY, "-", "+", 10_000)
        }
        entries = await self.redis.xrevrange(
            stream, max=last_delivered, count=self.settings.window_candles + len(pending)
        )
        skipped = 0
        for entry_id, fields in reversed(entries or []):
            if entry_id in pending:
                continue
            row = _closed_candle(cast(dict[str, str], fields or {}))
            if row is not None:
                window.add_row(row)
                continue
            # Handled entries include those the bus dead-lettered (undecodable, or not a closed
            # candle): they are not candles of the window, and must not stop every later start.
            try:
                kline = decode(fields).payload
            except DecodeError:
                skipped += 1
                continue
            if isinstance(kline, Kline) and kline.closed:
                window.add(kline)
            else:
                skipped += 1
        logger.info("window rebuilt symbol=%s candles=%d skipped=%d", symbol, len(window), skipped)
        return window

    async def handle(self, stream: str, event: Envelope) -> None:
        """Evaluate one closed candle and publish its decision (and signal, if any).

        A candle delivered again because its handling failed after it entered the window is
        evaluated again; its decision and signal keep their event ids, so nothing is doubled
        downstream. A history candle (too old to trade on) with more candles of its stream
        already read behind it is only added to the window (and its indicators): its decision is
        published with the next evaluation, in one transaction per batch instead of one per
        candle. Such a candle stays pending (``AckLater``) and is acknowledged in the transaction that publishes its
        decision: a strategy killed mid-batch leaves it to be evaluated again, never lost.
        """
        kline = event.payload
        if not isinstance(kline, Kline) or not kline.closed:
            return
        window = self.windows.get(kline.symbol)
        if window is None:
            return
        deferred = self.deferred.setdefault(kline.symbol, [])
        added = window.add(kline)
        if added:
            track = self.tracks.get(kline.symbol)
            if track is not None and track.specs == self._specs(kline.symbol):
                track.add(*window.last)
            else:
                self._track(kline.symbol, window)
        elif kline.open_time_ms != window.last_open_time:
            if any(candle.open_time_ms == kline.open_time_ms for candle, _ in deferred):
                raise AckLater  # read again while its decision still waits for the batch's evaluation
            await self._decide_again(kline, window)
            return
        if len(window) < 2:
            return
        if deferred and deferred[-1][0].open_time_ms == kline.open_time_ms:
            deferred.pop()
        recent = await self._is_recent(kline)
        if not recent and self.consumer.backlog(stream) > 0:
            deferred.append((kline, self.consumer.current_entry_id))
            raise AckLater
        track = self._track(kline.symbol, window)
        chosen = self.control.set_of(kline.symbol)
        strategy = self.registry.get(chosen.strategy)
        items: list[tuple[str, Envelope]] = []
        for candle in [*(candle for candle, _ in deferred), kline]:
            pair = track.pair(candle.open_time_ms)
            if pair is None:
                continue  # left the window while it waited
            previous, current = pair
            items += self._outcome(
                candle,
                strategy.evaluate(previous, current, chosen.parameters),
                current,
                chosen,
                recent=recent and candle is kline,
            )
        # The candle's own entry is acknowledged in the round's transaction that publishes its
        # decision, never before (``Outbox``).
        entry = self.consumer.current_entry_id
        handled = [entry_id for _, entry_id in deferred] + [entry]
        acks = [(stream, self.consumer.group, entry_id) for entry_id in handled if entry_id is not None]
        self.outbox.add(Output(kline.symbol, items, acks, entry))
        deferred.clear()
        if any(stream == streams.SIGNALS for stream, _ in items) or self.outbox.events >= OUTBOX_MAX_EVENTS:
            # A signal leaves at once (with what was queued before it, in order): the executor
            # starts on it while the rest of the round is decided. A start's catch-up decides
            # thousands of history candles in one round: published in parts, so neither this
            # process nor one transaction holds all of them.
            await self._publish_queued()
        if entry is not None:
            raise AckLater  # acknowledged with the round's output

    async def _decide_again(self, kline: Kline, window: CandleWindow) -> None:
        """Publish again the decision of a candle delivered once more after newer ones were evaluated.

        Only an unacknowledged entry comes back, and its decision may never have reached Redis: a
        Redis restarted on its AOF loses its last second of writes, the decision with them, while
        the kline and the newer candles survive in this process's window. Its decision and signal
        keep their event ids, so one that did land is not doubled downstream; the signal is not
        kept as the symbol's last one, a newer candle's is.
        """
        pair = self._track(kline.symbol, window).pair(kline.open_time_ms)
        if pair is None:
            return  # left the window: too old to matter
        previous, current = pair
        chosen = self.control.set_of(kline.symbol)
        evaluation = self.registry.get(chosen.strategy).evaluate(previous, current, chosen.parameters)
        items = self._outcome(kline, evaluation, current, chosen, recent=await self._is_recent(kline))
        await publish_atomically(self.redis, items)
        metrics.published(items, self.consumer.current_entry_id)
        logger.info("decision published again symbol=%s candle=%d", kline.symbol, kline.open_time_ms)

    async def _remember_signals(self, items: list[tuple[str, Envelope]]) -> None:
        """Keep each symbol's newest signal in ``strategy:last_signal`` (the dashboard's status reads it
        instead of decoding the stream). Display state only: a failure is logged, the signal stands."""
        latest = {
            event.payload.symbol: event
            for stream, event in items
            if stream == streams.SIGNALS and isinstance(event.payload, Signal)
        }
        if not latest:
            return
        mapping: dict[FieldT, EncodableT] = {
            symbol: dumps({**event.payload.model_dump(mode="json"), "ts_ms": event.ts_event_ms})
            for symbol, event in latest.items()
        }
        try:
            await self.redis.hset(streams.LAST_SIGNAL, mapping=mapping)
        except RedisError as e:
            logger.warning("last signal not kept: %s", e)

    def _specs(self, symbol: str) -> tuple[IndicatorSpec, ...]:
        return self.strategy(symbol).indicators(self.control.set_of(symbol).parameters)

    def _track(self, symbol: str, window: CandleWindow) -> IndicatorTrack:
        """The symbol's indicator track, rebuilt over the window when its strategy now asks for other
        indicators (a switch, a parameter version with other periods) or none exists yet (after a start)."""
        specs = self._specs(symbol)
        track = self.tracks.get(symbol)
        if track is None or track.specs != specs:
            track = IndicatorTrack.over(window.candles(), specs, self.settings.window_candles)
            self.tracks[symbol] = track
        return track

    def _outcome(
        self, kline: Kline, evaluation: rules.Evaluation, current: Row, chosen: SymbolSet, *, recent: bool
    ) -> list[tuple[str, Envelope]]:
        """The decision record of one candle and, for a recent candle that decided to trade, its signal."""
        values = {name: _finite(value) for name, value in current.values.items()}
        record = Decision(
            symbol=kline.symbol,
            interval=kline.interval,
            candle_open_time_ms=kline.open_time_ms,
            close=kline.close,
            warm=evaluation.warm,
            entry=evaluation.entry,
            exit=evaluation.exit,
            conditions=[
                Condition(name=c.name, passed=c.passed, value=_finite(c.value), threshold=_finite(c.threshold))
                for c in evaluation.conditions
            ],
            indicators={**values, "missing": list(evaluation.missing), "history": not recent},
            parameters_version=chosen.version,
            strategy=chosen.strategy,
        )
        items = [
            (
                streams.DECISIONS,
                make_event(
                    record,
                    SERVICE,
                    kline.close_time_ms,
                    event_id=f"decision-{kline.symbol}-{kline.open_time_ms}-{chosen.version}",
                ),
            )
        ]
        side = Side.BUY if evaluation.entry else Side.SELL if evaluation.exit else None
        if side is not None and recent:
            strategy = self.registry.get(chosen.strategy)
            signal = Signal(
                symbol=kline.symbol,
                side=side,
                reason=strategy.entry_reason if side is Side.BUY else strategy.exit_reason,
                price=kline.close,
                interval=kline.interval,
                candle_open_time_ms=kline.open_time_ms,
                indicators=values,
                parameters_version=chosen.version,
                strategy=chosen.strategy,
            )
            event_id = f"signal-{kline.symbol}-{kline.interval}-{kline.open_time_ms}-{side}"
            signal_event = make_event(signal, SERVICE, kline.close_time_ms, event_id=event_id)
            items += [(streams.SIGNALS, signal_event), (streams.executor_inbox(kline.symbol), signal_event)]
            logger.info(
                "signal symbol=%s side=%s price=%s candle=%d", kline.symbol, side, kline.close, kline.open_time_ms
            )
        return items

    async def _is_recent(self, kline: Kline) -> bool:
        """Whether the candle is close enough to the market's present to act on it.

        Read for each candle, not once per round: a start's catch-up round lasts seconds, minutes
        of market time in a fast replay, and a clock read at its start would take its last
        history candles for recent ones. (Reading every symbol's clock once per round was slower
        still: a minute close comes in many small rounds of a few symbols out of hundreds.)"""
        clock = await self.redis.hget(streams.MARKET_CLOCK, kline.symbol)
        if clock is None:
            return True
        lag = int(clock) - (kline.close_time_ms + 1)
        return lag <= self.settings.signal_max_lag_candles * self.interval_ms


def _closed_candle(fields: dict[str, str]) -> tuple[int, float, float, float, float, float] | None:
    """A closed candle of a kline stream read straight from its fields (the wire format market_data
    writes, version 1): 1,000 candles for each of 500 symbols through the validating decode take
    longer than a restart may. Anything else (another version, a forming candle, a malformed
    entry) returns None and goes through ``decode``."""
    if fields.get("type") != "kline" or fields.get("version") != "1" or fields.get("closed") != "true":
        return None
    try:
        row = (
            int(fields["open_time_ms"]),
            float(fields["open"]),
            float(fields["high"]),
            float(fields["low"]),
            float(fields["close"]),
            float(fields["volume"]),
        )
    except (KeyError, ValueError):
        return None
    _, open_, high, low, close, volume = row
    sane = all(math.isfinite(v) for v in row[1:]) and 0 < low <= min(open_, close) and max(open_, close) <= high
    return row if sane and volume >= 0 else None


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


async def run(settings: StrategySettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    await StrategyService(settings, redis, instance).run(stop)
