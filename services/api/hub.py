"""One reader of the bus per api process, fanning events out to every SSE client.

A single task XREADs every relayed stream and puts each event on each client's bounded
queue; a client whose queue is full is dropped (its connection is closed) instead of slowing
the others or growing memory. It reconnects with ``Last-Event-ID`` and gets what it missed.

Delivery follows the total order of ``relay.StreamCursor``. Entries of the current millisecond
are held back until Redis' clock has moved past it, because another stream may still receive
an entry with a smaller cursor in that millisecond.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.typing import KeyT, StreamIdT

from services.api.relay import Relayed, StreamCursor, encoded_data, is_ephemeral, sse_frame, to_relayed
from shared.bus import entries_by_stream

logger = logging.getLogger(__name__)

Entry = tuple[StreamCursor, dict[str, str]]
HOLD_BACK_POLL_S = 0.002


class Subscription:
    """One SSE client: its bounded queue, and how to close its connection when dropped."""

    def __init__(self, queue_size: int, on_drop: Callable[[], None] | None = None) -> None:
        self.queue: asyncio.Queue[Relayed] = asyncio.Queue(queue_size)
        self.on_drop = on_drop
        self.dropped = False


class Hub:
    """Reads the relayed streams and fans their events out to the subscriptions."""

    def __init__(
        self,
        redis: Redis,
        stream_names: list[str],
        *,
        queue_size: int = 500,
        backlog_limit: int = 1000,
        throttle_s: float = 0.5,
        block_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.stream_names = stream_names
        self.queue_size = queue_size
        self.backlog_limit = backlog_limit
        self.throttle_s = throttle_s
        self.block_ms = block_ms
        self.subscriptions: set[Subscription] = set()
        self.dropped_count = 0
        self._cursors: dict[KeyT, StreamIdT] = {}
        self._held: list[Entry] = []
        self._last_sent: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], Relayed] = {}
        self._outbox: list[Relayed] = []
        self.ready = asyncio.Event()
        # Called with (stream, entry id, fields) for every entry, in delivery order, clients or not.
        self.observers: list[Callable[[str, str, dict[str, str]], None]] = []
        # Turns a relayed event into the events the clients receive (formatting, derived events).
        self.transform: Callable[[Relayed], Awaitable[list[Relayed]]] | None = None
        # Formats one event for the clients (numbers in the symbol's precision); cheap and synchronous.
        self.format: Callable[[Relayed], Relayed] | None = None

    def subscribe(self, on_drop: Callable[[], None] | None = None) -> Subscription:
        """Register a client; it receives every event delivered from now on."""
        subscription = Subscription(self.queue_size, on_drop)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a client (its connection ended)."""
        self.subscriptions.discard(subscription)

    def _drop(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
        subscription.dropped = True
        self.dropped_count += 1
        logger.warning("dropped a dashboard event client that fell %d events behind", subscription.queue.qsize())
        if subscription.on_drop is not None:
            subscription.on_drop()

    def _fan_out(self, item: Relayed) -> None:
        if self.format is not None:
            item = self.format(item)
        # Encoded once here, the whole frame, rather than once per client.
        item = dataclasses.replace(item, encoded=encoded_data(item))
        self._outbox.append(dataclasses.replace(item, frame=sse_frame(item)))

    def _send_outbox(self) -> None:
        """Queue what one read produced for every client at once, with no await in between: each
        client's writer then wakes once and sends it all in one write, instead of once per event
        (a candle close brings several events; 100 clients x several writes stalled requests)."""
        items, self._outbox = self._outbox, []
        if not items:
            return
        for subscription in list(self.subscriptions):
            try:
                for item in items:
                    subscription.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._drop(subscription)

    async def run(self) -> None:
        """Relay until cancelled; Redis outages are logged and retried every second."""
        failing = False
        while True:
            try:
                if not self._cursors:
                    await self._init_cursors()
                    self.ready.set()
                await self._poll()
                if failing:
                    logger.info("event relay reading Redis again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep relaying through Redis hiccups
                if not failing:
                    logger.warning("event relay cannot read Redis: %s", e)
                failing = True
                await asyncio.sleep(1.0)

    async def _init_cursors(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in self.stream_names:
                pipe.xrevrange(name, count=1)
            replies = await pipe.execute()
        self._cursors = {
            name: (reply[0][0] if reply else "0-0") for name, reply in zip(self.stream_names, replies, strict=True)
        }

    async def _poll(self) -> None:
        wait_s = self._next_flush_in()
        if self._held:
            await asyncio.sleep(HOLD_BACK_POLL_S)
        else:
            block = self.block_ms if wait_s is None else max(1, min(self.block_ms, int(wait_s * 1000)))
            self._collect(await self.redis.xread(self._cursors, count=500, block=block))
        # TIME first, then read: everything stamped before that time is in this read.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.xread(self._cursors, count=1000)
            (seconds, micros), reply = await pipe.execute()
        self._collect(reply)
        server_ms = int(seconds) * 1000 + int(micros) // 1000
        ready = sorted((entry for entry in self._held if entry[0].ms < server_ms), key=lambda entry: entry[0])
        self._held = [entry for entry in self._held if entry[0].ms >= server_ms]
        for cursor, fields in ready:
            for observe in self.observers:
                observe(cursor.stream, cursor.entry_id, fields)
            await self._deliver(cursor, fields)
        self._flush_throttled()
        self._send_outbox()

    def _collect(self, reply: Any) -> None:
        for stream, entries in entries_by_stream(reply):
            for entry_id, fields in entries:
                self._cursors[stream] = entry_id
                if fields:
                    self._held.append((StreamCursor.of(stream, entry_id), fields))

    async def _deliver(self, cursor: StreamCursor, fields: dict[str, str]) -> None:
        if not self.subscriptions:
            return
        item = to_relayed(cursor.stream, cursor.entry_id, fields)
        if item is None:
            return
        if item.throttle_key is None:
            for out in await self._transformed(item):
                self._fan_out(out)
            return
        last = self._last_sent.get(item.throttle_key, 0.0)
        if time.monotonic() - last >= self.throttle_s:
            self._pending.pop(item.throttle_key, None)
            self._last_sent[item.throttle_key] = time.monotonic()
            self._fan_out(item)
        else:
            # Keep only the newest; it goes out when the symbol's interval has passed.
            self._pending[item.throttle_key] = item

    async def _transformed(self, item: Relayed) -> list[Relayed]:
        if self.transform is None:
            return [item]
        try:
            return await self.transform(item)
        except Exception as e:  # noqa: BLE001 - the raw event still goes out
            logger.warning("event %s not enriched: %s", item.event, e)
            return [item]

    def _flush_throttled(self) -> None:
        now = time.monotonic()
        for key, item in list(self._pending.items()):
            if now - self._last_sent.get(key, 0.0) >= self.throttle_s:
                del self._pending[key]
                self._last_sent[key] = now
                self._fan_out(item)

    def _next_flush_in(self) -> float | None:
        if not self._pending:
            return None
        now = time.monotonic()
        return max(0.0, min(self._last_sent.get(key, 0.0) + self.throttle_s - now for key in self._pending))

    async def position(self) -> StreamCursor:
        """The newest resumable entry on the bus now: a client that loads its snapshot after
        asking, then resumes from here, misses nothing that happened in between."""
        names = [name for name in self.stream_names if not is_ephemeral(name)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.xrevrange(name, count=1)
            replies = await pipe.execute()
        newest = [StreamCursor.of(name, reply[0][0]) for name, reply in zip(names, replies, strict=True) if reply]
        return max(newest, default=StreamCursor(0, 0, "~"))

    async def backlog(self, after: StreamCursor) -> tuple[list[Relayed], bool]:
        """Resumable events ordered after ``after``, and whether there were too many to replay.

        Only entries stamped before Redis' current millisecond are returned; later ones reach
        the caller through its subscription, which must exist before this call.
        """
        names = [name for name in self.stream_names if not is_ephemeral(name)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.time()
            for name in names:
                pipe.xrange(name, min=after.start_for(name), max="+", count=self.backlog_limit + 1)
            (seconds, micros), *replies = await pipe.execute()
        server_ms = int(seconds) * 1000 + int(micros) // 1000
        entries: list[Entry] = []
        for name, reply in zip(names, replies, strict=True):
            if len(reply) > self.backlog_limit:
                return [], True
            entries.extend((StreamCursor.of(name, entry_id), fields) for entry_id, fields in reply if fields)
        items = []
        for cursor, fields in sorted(entries, key=lambda entry: entry[0]):
            if cursor.ms >= server_ms:
                break
            item = to_relayed(cursor.stream, cursor.entry_id, fields)
            if item is not None and item.cursor is not None:
                items.extend(await self._transformed(item))
        # A derived summary (``profit``) is current state: the last one replayed is enough.
        last_derived = {item.event: index for index, item in enumerate(items) if item.cursor is None}
        items = [
            item for index, item in enumerate(items) if item.cursor is not None or last_derived[item.event] == index
        ]
        if self.format is not None:
            items = [self.format(item) for item in items]
        return items, False
