"""Prometheus metrics: the families every service shares and the ``/metrics`` endpoint.

Each service process exposes prometheus_client's default registry (its own families, these,
and the process collector) on its own port, served by a plain asyncio server: a scrape runs on
the event loop between two handlers, no thread. The bus (``shared.bus.Consumer``) and the
leases feed the shared families; ``watch_consumers`` measures each consumer group's backlog.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis

from shared import streams
from shared.aio import sleep_or_stop
from shared.backlog import Backlog, backlogs

if TYPE_CHECKING:
    from shared.bus import Consumer

logger = logging.getLogger(__name__)

# Handler and latency buckets in seconds: a handler takes 100 us to a few seconds (an order).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BACKLOG_CAP = 1000  # backlog entries counted per stream and scrape round (the gauge saturates here)
WATCH_EVERY_S = 5.0
MEASURE_CHUNK = 200  # (stream, group) pairs measured per round trip
WATCH_PAIRS = 500  # pairs measured per round of the watcher
PORT_STEP = 10  # a replica whose port is taken tries port + 10, + 20, ... (9101, 9111, ...)
PORT_TRIES = 10

EVENTS = Counter(
    "bot_bus_events_total",
    "Bus entries a consumer group took, by stream, event type and outcome",
    ["group", "stream", "type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "bot_bus_handler_seconds",
    "Time a consumer's handler took for one entry, by stream family",
    ["group", "family"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter("bot_bus_dead_letters_total", "Entries moved to deadletter:<stream>", ["group", "stream"])
BACKLOG_ENTRIES = Gauge(
    "bot_consumer_backlog_entries",
    f"Entries of the stream after the group's last-delivered id (at most {BACKLOG_CAP})",
    ["group", "stream"],
)
BACKLOG_SECONDS = Gauge(
    "bot_consumer_backlog_seconds",
    "Redis time between the stream's newest entry and the group's last-delivered entry",
    ["group", "stream"],
)
PENDING = Gauge("bot_consumer_pending_entries", "Entries delivered and not acknowledged yet", ["group", "stream"])
LEASES = Gauge("bot_lease_owned", "1 while this process holds the symbol's lease", ["service", "symbol"])
HEARTBEAT = Gauge("bot_heartbeat_timestamp_seconds", "Wall time of this process's last heartbeat", ["service"])

_consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()
_watched: set[tuple[str, str]] = set()  # (stream, group) measured from outside (the api)
_event_children: dict[tuple[str, str, str, str], Any] = {}
_handler_children: dict[tuple[str, str], Any] = {}


def track(consumer: Consumer) -> None:
    """Measure this consumer's groups in ``watch_consumers`` (the bus registers each one)."""
    _consumers.add(consumer)


def watch_groups(pairs: Iterable[tuple[str, str]]) -> None:
    """Also measure these (stream, group) pairs: the api's view, which still moves while the
    consuming service is stopped (a consumer measures only itself)."""
    _watched.update(pairs)


def count_event(group: str, stream: str, event_type: str, outcome: str) -> None:
    """One entry's outcome (children cached: the labels lookup is most of a counter's cost)."""
    key = (group, stream, event_type, outcome)
    child = _event_children.get(key)
    if child is None:
        child = _event_children[key] = EVENTS.labels(*key)
    child.inc()


def observe_handler(group: str, stream: str, seconds: float) -> None:
    key = (group, streams.family(stream))
    child = _handler_children.get(key)
    if child is None:
        child = _handler_children[key] = HANDLER_SECONDS.labels(*key)
    child.observe(seconds)


def since_entry_s(entry_id: str | None) -> float | None:
    """Seconds from the Redis time a bus entry was appended to now (same host clock), or None."""
    if not entry_id:
        return None
    return max(0.0, time.time() - int(entry_id.partition("-")[0]) / 1000)


# -- consumer-group backlog ------------------------------------------------------------------


async def watch_consumers(redis: Redis, stop: asyncio.Event, every_s: float = WATCH_EVERY_S) -> None:
    """Every ``every_s``: backlog and pending entries of each tracked consumer's streams and of
    the watched pairs, at most ``WATCH_PAIRS`` of them per round (the next ones in the next
    round: an executor of 500 symbols consumes 2,000 streams, whose every measurement costs
    Redis and the service's loop alike)."""
    offset = 0
    while not stop.is_set():
        pairs = {(stream, consumer.group) for consumer in list(_consumers) for stream in consumer.streams}
        ordered = sorted(pairs | _watched)
        offset = offset if offset < len(ordered) else 0
        try:
            await measure_groups(redis, ordered[offset : offset + WATCH_PAIRS])
        except Exception as e:  # noqa: BLE001 - a metric must never stop a service
            logger.debug("backlog not measured: %s", e)
        offset += WATCH_PAIRS
        await sleep_or_stop(stop, every_s)


async def measure_groups(redis: Redis, pairs: Sequence[tuple[str, str]]) -> None:
    """The gauges of each (stream, group), from ``shared.backlog`` (the group's last-delivered id
    against the stream's newest id: Redis' own ``lag`` is unknown after a trim or a deletion)."""
    for start in range(0, len(pairs), MEASURE_CHUNK):  # small replies: the loop serves other tasks between
        for item in await backlogs(redis, pairs[start : start + MEASURE_CHUNK], cap=BACKLOG_CAP):
            _set_gauges(item)


def _set_gauges(item: Backlog) -> None:
    BACKLOG_ENTRIES.labels(item.group, item.stream).set(item.entries)
    BACKLOG_SECONDS.labels(item.group, item.stream).set(item.behind_ms / 1000)
    PENDING.labels(item.group, item.stream).set(item.pending)


# -- the endpoint ----------------------------------------------------------------------------


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


async def serve(host: str, port: int) -> asyncio.Server | None:
    """Serve ``GET /metrics`` on ``host:port`` (``port`` 0: off); a taken port moves on by
    ``PORT_STEP`` so replicas on one host each get one. None when off or nothing was free."""
    if port <= 0:
        return None
    for attempt in range(PORT_TRIES):
        try:
            server = await asyncio.start_server(_answer, host, port + attempt * PORT_STEP)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            continue
        logger.info("metrics on http://%s:%d/metrics", host, bound_port(server))
        return server
    logger.warning("metrics off: ports %d..%d (step %d) are all taken", port, port + 9 * PORT_STEP, PORT_STEP)
    return None


def bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        method, _, rest = request.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method == b"GET" and path == b"/metrics":
            body, content_type = exposition()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
        else:
            body, head = b"only GET /metrics\n", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
        writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()
