"""State the api keeps from the events it relays, so ``/api/status`` decodes no stream entry per call.

The hub hands every relayed entry, in order, to ``LiveState.observe``: the executor's last
``bot_state`` report, the last market status, the newest signal per symbol, and the market clock
against the wall clock (from the ticker entries: entry id = when market_data published it,
``ts_event_ms`` = the exchange's market time). A status request first compares each followed
stream's newest id (read in its pipeline, not decoded) with what was observed and observes the
few entries the relay has not delivered yet, so an answer never lags behind the bus. How fast
the market clock runs is what the market exposes about a replay; the dashboard shows a REPLAY
badge from it, and no trading code ever asks.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from services.api.follow import catch_up, entry_position
from shared import streams
from shared.codec import DecodeError, decode

RATE_WINDOW_MS = 60_000
RATE_MIN_SPAN_MS = 10_000
REPLAY_RATE_TOLERANCE = Decimal("0.1")
REPLAY_CLOCK_GAP_MS = 5 * 60_000
SEED_LOOKBACK = 200
CATCH_UP_LIMIT = 1000
FOLLOWED = (streams.EXECUTOR_EVENTS, streams.MARKET_STATUS, streams.SIGNALS)

_entry = entry_position


class LiveState:
    """The newest bot-state report, market status and market clock, kept up to date by the hub."""

    def __init__(self) -> None:
        self.bot_event: dict[str, Any] | None = None
        self.market_status: dict[str, Any] | None = None
        self.signals: dict[str, dict[str, Any]] = {}
        self.cursors: dict[str, tuple[int, int]] = {}
        self._clock: deque[tuple[int, int]] = deque()  # (wall ms, market ms)
        # Counts the changes of what this keeps: a status built at one count is good until the next.
        self.version = 0

    async def seed(self, redis: Redis) -> None:
        """What happened before this process started: read once, at start."""
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xrevrange(streams.EXECUTOR_EVENTS, count=SEED_LOOKBACK)
            pipe.xrevrange(streams.MARKET_STATUS, count=1)
            pipe.xrevrange(streams.SIGNALS, count=1)
            executor_entries, status_entries, signal_entries = await pipe.execute()
        for entry_id, fields in reversed(status_entries):
            self.observe(streams.MARKET_STATUS, entry_id, fields)
        for entry_id, fields in reversed(executor_entries):
            if fields.get("type") == "bot_state":
                self.observe(streams.EXECUTOR_EVENTS, entry_id, fields)
        # Signals before now are in ``strategy:last_signal``; only newer ones are followed.
        for entry_id, _ in signal_entries:
            self.cursors[streams.SIGNALS] = _entry(entry_id)

    async def catch_up(self, redis: Redis, newest: dict[str, list[Any]]) -> None:
        """Observe the entries of followed streams newer than the last one observed.

        ``newest`` maps each of ``FOLLOWED`` to its ``XREVRANGE ... COUNT 1`` reply.
        """
        await catch_up(redis, self.cursors, newest, self.observe, CATCH_UP_LIMIT)

    def observe(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        kind = fields.get("type")
        if streams.is_ticker_stream(stream):
            self._sample(int(entry_id.split("-")[0]), fields.get("ts_event_ms"))
            return
        if stream in FOLLOWED:
            position = _entry(entry_id)
            if position <= self.cursors.get(stream, (0, -1)):
                return  # seen already (the relay and a status request may both bring it)
            self.cursors[stream] = position
        if kind == "signal" and stream == streams.SIGNALS:
            event = self._decode(fields)
            if event is not None:
                self.version += 1
                self.signals[event.payload.symbol] = {
                    **event.payload.model_dump(mode="json"),
                    "ts_ms": event.ts_event_ms,
                }
        elif kind == "bot_state" and stream == streams.EXECUTOR_EVENTS:
            event = self._decode(fields)
            if event is not None:
                self.version += 1
                self.bot_event = {
                    "state": event.payload.state,
                    "reason": event.payload.reason,
                    "changed_at_ms": event.ts_event_ms,
                }
        elif kind == "market_status":
            event = self._decode(fields)
            if event is not None:
                self.version += 1
                self.market_status = {**event.payload.model_dump(mode="json"), "ts_ms": event.ts_event_ms}

    @staticmethod
    def _decode(fields: dict[str, str]) -> Any:
        try:
            return decode(fields)
        except DecodeError:
            return None

    def _sample(self, wall_ms: int, market_text: str | None) -> None:
        try:
            market_ms = int(market_text or "")
        except ValueError:
            return
        if self._clock and market_ms <= self._clock[-1][1]:
            return
        self._clock.append((wall_ms, market_ms))
        self.version += 1
        while len(self._clock) > 2 and wall_ms - self._clock[1][0] >= RATE_WINDOW_MS:
            self._clock.popleft()

    def rate(self) -> Decimal | None:
        """Market ms per wall ms over the last minute (at least 10 s of it), one decimal."""
        if len(self._clock) < 2:
            return None
        (w0, m0), (w1, m1) = self._clock[0], self._clock[-1]
        if w1 - w0 < RATE_MIN_SPAN_MS:
            return None
        return (Decimal(m1 - m0) / Decimal(w1 - w0)).quantize(Decimal("0.1"))

    def market(self, clock_ms: int | None, wall_ms: int) -> dict[str, Any]:
        """The status' ``market`` block: market clock, its rate, and whether this looks like a replay."""
        rate = self.rate()
        replay = (rate is not None and abs(rate - 1) > REPLAY_RATE_TOLERANCE) or (
            clock_ms is not None and abs(clock_ms - wall_ms) > REPLAY_CLOCK_GAP_MS
        )
        return {
            "time_ms": clock_ms,
            "wall_ms": wall_ms,
            "rate": None if rate is None else format(rate, "f"),
            "replay": bool(replay),
        }
