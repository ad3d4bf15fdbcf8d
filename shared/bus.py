"""The message bus over Redis Streams: publish, and consume through consumer groups.

Consumption guarantees, in order of importance:
- an entry is acknowledged only after its handler returned;
- a consumer first re-reads its own pending entries (ID ``0``) so a failed entry is retried
  before anything newer from the same stream, which keeps each stream's order;
- entries left pending by a dead consumer are reclaimed (``XAUTOCLAIM``) after an idle time,
  or at once when the caller knows the previous owner is gone (lease taken over); the pending
  entries are merged by entry id with the entries of every stream not delivered yet, so a
  claimed entry never overtakes an older entry of another stream;
- an entry that cannot be decoded, or whose handler failed ``max_deliveries`` times, is moved
  to ``deadletter:<stream>`` with the error and acknowledged. Failures are counted in the bus's
  own hash (``streams.failures_key``), not by the stream's delivery counter, which also rises
  on every claim and re-read: consumers killed while holding an entry never dead-letter it;
- a handler raising ``AckLater`` took the entry in but publishes its output with a later
  entry's: the entry stays pending (not a failure; the stream goes on) until the handler
  acknowledges it in the transaction that publishes that output (``publish_atomically(acks=)``),
  so a consumer killed in between leaves it to be handled again;
- with ``dedupe``, a marker keyed by ``event_id`` makes a redelivered event a no-op once its
  handler succeeded (the marker and the ack are written in one transaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from shared import metrics, streams
from shared.aio import sleep_or_stop
from shared.codec import DecodeError, decode, encode
from shared.events import Envelope

logger = logging.getLogger(__name__)

Handler = Callable[[str, Envelope], Awaitable[None]]


class NotMine(Exception):
    """Raised by a handler that may not handle the entry here (its stream changed hands): the
    entry stays pending for the next owner and the attempt does not count as a failure."""


class AckLater(Exception):
    """Raised by a handler whose entry's output is published with a later entry's: the entry
    stays pending until that publish acknowledges it (``publish_atomically(acks=...)``)."""


# Called with (stream, entry id, raw fields) before decoding: an error text refuses the entry,
# which goes to the dead-letter stream unhandled (the executor checks MACs this way).
Gate = Callable[[str, str, dict[str, str]], Awaitable[str | None]]

DEDUPE_TTL_S = 7 * 24 * 3600
PENDING_READ_COUNT = 10_000
# Streams set up or claimed per pipelined round trip (a start of 500 symbols: thousands of streams).
CLAIM_BATCH = 500


def stream_fields(event: Envelope) -> dict[FieldT, EncodableT]:
    """``encode(event)`` typed as redis-py's ``xadd`` takes it."""
    return _as_fields(encode(event))


def _as_fields(fields: dict[str, str]) -> dict[FieldT, EncodableT]:
    # xadd is typed with a dict (invariant) of redis-py's own unions; text fields are among them.
    return cast("dict[FieldT, EncodableT]", fields)


async def publish(redis: Redis, stream: str, event: Envelope) -> str:
    """Append ``event`` to ``stream`` (approximate MAXLEN from ``shared.streams``)."""
    entry_id = await redis.xadd(stream, stream_fields(event), maxlen=streams.maxlen_for(stream), approximate=True)
    return cast(str, entry_id)  # the clients decode responses (shared/redis_conn.py)


def queue_publish(pipe: Pipeline, stream: str, event: Envelope) -> None:
    """Queue ``publish``'s append of ``event`` to ``stream`` in ``pipe`` (sent with the pipeline)."""
    pipe.xadd(stream, stream_fields(event), maxlen=streams.maxlen_for(stream), approximate=True)


async def publish_atomically(
    redis: Redis, items: Iterable[tuple[str, Envelope]], acks: Iterable[tuple[str, str, str]] = ()
) -> list[str]:
    """Append several events in one MULTI/EXEC: all of them land, or none. ``acks`` are
    (stream, group, entry id) of entries left pending by ``AckLater`` whose output these events
    are: they are acknowledged in the same transaction, never before their output exists."""
    async with redis.pipeline(transaction=True) as pipe:
        for stream, event in items:
            queue_publish(pipe, stream, event)
        added = len(pipe)
        for stream, group, entry_id in acks:
            pipe.xack(stream, group, entry_id)
            pipe.hdel(streams.failures_key(group, stream), entry_id)
        return (await pipe.execute())[:added]


async def ensure_group(redis: Redis, stream: str, group: str, start_id: str = "0") -> None:
    """Create ``group`` on ``stream`` (and the stream) unless it exists already."""
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


async def ensure_groups(redis: Redis, groups: Iterable[tuple[str, str, str]]) -> None:
    """``ensure_group`` for each (stream, group, start id), in one round trip per ``CLAIM_BATCH``."""
    items = list(groups)
    for start in range(0, len(items), CLAIM_BATCH):
        chunk = items[start : start + CLAIM_BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for stream, group, start_id in chunk:
                pipe.xgroup_create(stream, group, id=start_id, mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply


class Consumer:
    """One consumer of one group over a changeable set of streams."""

    def __init__(
        self,
        redis: Redis,
        *,
        group: str,
        name: str,
        handler: Handler,
        streams_to_read: Iterable[str] = (),
        start_id: str = "0",
        block_ms: int = 1000,
        count: int = 100,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        dedupe: bool = False,
        retry_delay_s: float = 0.5,
        gate: Gate | None = None,
    ) -> None:
        self.redis = redis
        self.group = group
        self.name = name
        self.handler = handler
        self.start_id = start_id
        self.block_ms = block_ms
        self.count = count
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.dedupe = dedupe
        self.retry_delay_s = retry_delay_s
        self.gate = gate
        self._streams: set[str] = set()
        self._ready: set[str] = set()
        self._to_take_over: set[str] = set()
        self._last_claim = 0.0
        self._recheck_pending = True
        self._carry: list[tuple[tuple[int, int], str, str, dict[str, str] | None]] = []
        self._unhandled: Counter[str] = Counter()
        self.current_entry_id: str | None = None  # the entry whose handler is running
        for stream in streams_to_read:
            self.add_stream(stream)
        metrics.track(self)

    def backlog(self, stream: str) -> int:
        """Entries of ``stream`` already read in the batch being handled and still to come after
        the current one (a handler may leave work that later entries will redo anyway)."""
        return self._unhandled[stream]

    @property
    def streams(self) -> frozenset[str]:
        """The streams currently read."""
        return frozenset(self._streams)

    def add_stream(self, stream: str, take_over: bool = False) -> None:
        """Start reading ``stream``; ``take_over`` claims every pending entry of it at once."""
        self._streams.add(stream)
        if take_over:
            self._to_take_over.add(stream)

    def unfinished(self) -> set[str] | None:
        """The streams with entries delivered to this consumer that may still wait here (claimed
        at a takeover, carried to the next round, not prepared yet); None while a failure left
        entries pending in some stream: reading any of them must go on."""
        if self._recheck_pending:
            return None
        return {item[1] for item in self._carry} | self._to_take_over | (self._streams - self._ready)

    def read_pending_again(self) -> None:
        """Read this consumer's pending entries first in the next round: a handler's output that
        was to acknowledge them (``AckLater``) was not published, so they must be handled again."""
        self._recheck_pending = True

    def remove_stream(self, stream: str) -> None:
        """Stop reading ``stream`` (its pending entries stay in the group for the next owner)."""
        self._streams.discard(stream)
        self._carry = [item for item in self._carry if item[1] != stream]
        self._ready.discard(stream)
        self._to_take_over.discard(stream)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        while not stop.is_set():
            if not self._streams:
                await sleep_or_stop(stop, self.block_ms / 1000)
                continue
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep consuming through Redis hiccups (logged)
                logger.exception("consumer group=%s name=%s poll failed", self.group, self.name)
                await sleep_or_stop(stop, 1.0)

    async def poll_once(self, block_ms: int | None = None) -> int:
        """One round: set up streams, reclaim, then own pending entries merged with new ones
        (waiting for new ones, when there are none yet, up to ``block_ms``, by default the
        consumer's; 0: not at all)."""
        try:
            await self._prepare_streams()
            await self._reclaim_stale()
            if self._recheck_pending:
                # Carried entries are delivered, hence pending: they are read again from the list.
                self._carry.clear()
            return await self._handle_batch(
                pending=self._recheck_pending, block_ms=self.block_ms if block_ms is None else block_ms
            )
        except Exception:
            # Entries delivered here may be unacknowledged now (a round cut short, or a Redis
            # restarted on its AOF that lost its last acknowledgements): the next round reads
            # them first, at once, rather than when the claim of idle entries finds them.
            self._recheck_pending = True
            raise

    async def _prepare_streams(self) -> None:
        # Pipelined: a start or takeover of 500 symbols adds thousands of streams at once.
        new = sorted(self._streams - self._ready)
        if new:
            await ensure_groups(self.redis, [(stream, self.group, self.start_id) for stream in new])
            self._ready.update(new)
            self._recheck_pending = True
        if self._to_take_over:
            await self._claim_all(sorted(self._to_take_over), min_idle_ms=0)
            self._to_take_over.clear()

    async def _reclaim_stale(self) -> None:
        if time.monotonic() - self._last_claim < self.claim_idle_ms / 2000:
            return
        self._last_claim = time.monotonic()
        await self._claim_all(sorted(self._ready), self.claim_idle_ms)

    async def _claim_all(self, names: list[str], min_idle_ms: int) -> None:
        """XAUTOCLAIM every stream of ``names``: the first page of all in one round trip, the
        rare stream with more than a page then on its own."""
        for start in range(0, len(names), CLAIM_BATCH):
            chunk = names[start : start + CLAIM_BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for stream in chunk:
                    pipe.xautoclaim(stream, self.group, self.name, min_idle_time=min_idle_ms, start_id="0-0", count=100)
                replies = await pipe.execute()
            for stream, reply in zip(chunk, replies, strict=True):
                cursor, claimed = reply[0], reply[1]
                self._claimed(stream, claimed)
                if cursor not in ("0-0", b"0-0"):
                    await self._claim(stream, min_idle_ms, cursor)

    def _claimed(self, stream: str, claimed: list[Any]) -> None:
        if claimed:
            self._recheck_pending = True
            logger.info("claimed %d pending entries stream=%s group=%s", len(claimed), stream, self.group)

    async def _claim(self, stream: str, min_idle_ms: int, cursor: str = "0-0") -> None:
        while True:
            reply = await self.redis.xautoclaim(
                stream, self.group, self.name, min_idle_time=min_idle_ms, start_id=cursor, count=100
            )
            cursor, claimed = reply[0], reply[1]
            self._claimed(stream, claimed)
            if cursor in ("0-0", b"0-0"):
                return

    async def _read(self, ready: list[str], from_id: str, count: int, block: int | None) -> list[tuple[str, list[Any]]]:
        reply = await self.redis.xreadgroup(
            self.group, self.name, dict.fromkeys(ready, from_id), count=count, block=block
        )
        return [
            (stream, entries) for stream, entries in entries_by_stream(reply) if stream in self._streams and entries
        ]

    async def _handle_batch(self, *, pending: bool, block_ms: int) -> int:
        ready = sorted(self._ready)
        if not ready:
            return 0
        reads: list[tuple[list[tuple[str, list[Any]]], int]] = []
        if pending:
            # Everything delivered to this consumer and not acknowledged (its own failures, the
            # entries claimed from a dead consumer), read in one go...
            own = await self._read(ready, "0", PENDING_READ_COUNT, None)
            if not own:
                self._recheck_pending = False
            reads.append((own, PENDING_READ_COUNT))
        # ... and what no consumer received yet: both are merged by entry id below, so a signal
        # claimed from a dead owner is not handled before older ticks it never saw.
        block = None if pending or self._carry or block_ms <= 0 else block_ms
        reads.append((await self._read(ready, ">", self.count, block), self.count))
        batch = [item for item in self._carry if item[1] in self._streams]
        self._carry = []
        horizon: tuple[int, int] | None = None
        for streams_read, count in reads:
            for stream, entries in streams_read:
                batch.extend((_id_key(entry_id), stream, entry_id, fields) for entry_id, fields in entries)
                if len(entries) >= count:
                    # This stream may hold more entries than were read: nothing later than its
                    # last entry can be handled before the rest of it has been read.
                    last = _id_key(entries[-1][0])
                    horizon = last if horizon is None else min(horizon, last)
        # Entries of all streams are handled in arrival order (ids are times of one server), so
        # a stop-loss tick published before a signal is handled before it.
        batch.sort(key=lambda item: item[0])
        if horizon is not None:
            self._carry = [item for item in batch if item[0] > horizon]
            batch = [item for item in batch if item[0] <= horizon]
        blocked: set[str] = set()
        handled = 0
        self._unhandled = Counter(item[1] for item in batch)
        for _, stream, entry_id, fields in batch:
            self._unhandled[stream] -= 1
            if stream in blocked or stream not in self._streams:
                continue  # blocked by a failure, or given up by the handler of an earlier entry
            ok = await self._handle_entry(stream, entry_id, fields)
            handled += 1
            if not ok:
                # Later entries of this stream wait so the stream's order holds; they and the
                # carried ones are read again from the pending list, in order.
                blocked.add(stream)
                self._recheck_pending = True
                self._carry = []
        self._unhandled.clear()
        if blocked:
            await asyncio.sleep(self.retry_delay_s)
        return handled

    async def _handle_entry(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> bool:
        failures_key = streams.failures_key(self.group, stream)
        if not fields:
            # Trimmed away while pending: nothing left to handle.
            await self._ack(stream, entry_id)
            return True
        if self.gate is not None:
            refusal = await self.gate(stream, entry_id, fields)
            if refusal:
                await self._dead_letter(stream, entry_id, fields, refusal)
                return True
        try:
            event = decode(fields)
        except DecodeError as e:
            await self._dead_letter(stream, entry_id, fields, f"decode: {e}")
            return True
        marker = streams.processed_key(self.group, event.event_id)
        if self.dedupe and await self.redis.exists(marker):
            await self._ack(stream, entry_id)
            return True
        self.current_entry_id = entry_id
        started = time.perf_counter()
        try:
            await self.handler(stream, event)
        except asyncio.CancelledError:
            raise
        except AckLater:
            metrics.count_event(self.group, stream, event.type, "handled")
            return True  # pending until the handler's own publish acknowledges it
        except NotMine as e:
            logger.info("entry left for the next owner stream=%s id=%s: %s", stream, entry_id, e)
            return False
        except Exception as e:  # noqa: BLE001 - the entry stays pending and is retried
            metrics.count_event(self.group, stream, event.type, "failed")
            failures = int(await self.redis.hincrby(failures_key, entry_id, 1))
            logger.warning(
                "handler failed stream=%s id=%s type=%s failure=%d: %s", stream, entry_id, event.type, failures, e
            )
            if failures >= self.max_deliveries:
                await self._dead_letter(stream, entry_id, fields, f"{type(e).__name__}: {e} (failed {failures} times)")
                return True
            return False
        finally:
            self.current_entry_id = None
            metrics.observe_handler(self.group, stream, time.perf_counter() - started)
        metrics.count_event(self.group, stream, event.type, "handled")
        await self._ack(stream, entry_id, marker if self.dedupe else None)
        return True

    async def _ack(self, stream: str, entry_id: str, marker: str | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if marker is not None:
                pipe.set(marker, "1", ex=DEDUPE_TTL_S)
            pipe.xack(stream, self.group, entry_id)
            pipe.hdel(streams.failures_key(self.group, stream), entry_id)
            await pipe.execute()

    async def _dead_letter(self, stream: str, entry_id: str, fields: dict[str, str], error: str) -> None:
        target = streams.deadletter_stream(stream)
        body = {**fields, "dl_error": error, "dl_stream": stream, "dl_entry_id": entry_id, "dl_group": self.group}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(target, _as_fields(body), maxlen=streams.maxlen_for(target), approximate=True)
            pipe.xack(stream, self.group, entry_id)
            pipe.hdel(streams.failures_key(self.group, stream), entry_id)
            await pipe.execute()
        metrics.DEAD_LETTERS.labels(self.group, stream).inc()
        logger.error("moved entry to %s id=%s: %s", target, entry_id, error)


def entries_by_stream(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str] | None]]]]:
    """An XREAD / XREADGROUP reply as ``[(stream, [(entry id, fields), ...]), ...]``, whatever the
    protocol: RESP2 gives a list of pairs, RESP3 a map (``fields`` is None for a trimmed entry)."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3 replies map stream -> [entries]
        return [
            (stream, list(value[0] if value and isinstance(value[0], list) else value))
            for stream, value in reply.items()
        ]
    return [(stream, list(entries)) for stream, entries in reply]


def entry_time_ms(entry_id: str) -> int:
    """The Redis server time (ms) at which the entry ``entry_id`` was appended."""
    return _id_key(entry_id)[0]


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)
