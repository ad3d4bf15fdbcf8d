"""Logging: one line per record on stderr with the service name, and the same records
published to the bounded ``logs`` stream so the dashboard can show every service's logs.

Publishing never blocks the caller: records go through a bounded queue to one writer task,
and records are dropped (counted) rather than slowing a service down.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys

from redis.asyncio import Redis

from shared import streams
from shared.bus import stream_fields
from shared.events import LogRecord, make_event

FORMAT = "%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s"
# Values that look like credentials never leave the process, whatever a library logs.
_SECRET_PATTERNS = [
    re.compile(r"(signature=)[0-9a-fA-F]+"),
    re.compile(r"((?:api[_-]?key|secret|password|X-MBX-APIKEY)['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+", re.IGNORECASE),
]


# Exact texts a service was configured with and must never show (notification URLs and their
# tokens, see ``add_secret``); set once at start, read by every log record.
_LITERAL_SECRETS: set[str] = set()


def add_secret(value: str) -> None:
    """Mask every occurrence of ``value`` (a configured credential) in this process's log lines."""
    if len(value) >= 6:
        _LITERAL_SECRETS.add(value)


def redact(text: str) -> str:
    """Mask signatures, API keys, secrets, passwords and the configured secrets inside a log message."""
    for secret in sorted(_LITERAL_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class StreamPublisher(logging.Handler):
    """Queue log records for the Redis ``logs`` stream; ``run`` drains the queue."""

    def __init__(self, service: str, level: int = logging.INFO, queue_size: int = 1000) -> None:
        super().__init__(level)
        self.service = service
        self.queue: asyncio.Queue[LogRecord] = asyncio.Queue(queue_size)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = redact(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                message = f"{message} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self.queue.put_nowait(
                LogRecord(service=self.service, level=record.levelname, logger=record.name, message=message)
            )
        except asyncio.QueueFull:
            self.dropped += 1
        except Exception:  # noqa: BLE001 - a log handler must never raise into the caller
            self.handleError(record)

    async def run(self, redis: Redis, stop: asyncio.Event) -> None:
        """Write queued records to the logs stream until ``stop`` is set."""
        while not stop.is_set():
            try:
                record = await asyncio.wait_for(self.queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            try:
                await redis.xadd(
                    streams.LOGS,
                    stream_fields(make_event(record, self.service)),
                    maxlen=streams.maxlen_for(streams.LOGS),
                    approximate=True,
                )
            except Exception:  # noqa: BLE001 - Redis down: keep logging to stderr only
                self.dropped += 1


def setup_logging(service: str, level: str = "INFO") -> StreamPublisher:
    """Configure stderr logging for ``service`` and return the stream publisher handler."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_RedactingFormatter(FORMAT.format(service=service)))
    root.addHandler(console)
    publisher = StreamPublisher(service, level=logging.getLevelName(level))
    root.addHandler(publisher)
    for noisy in ("websockets", "asyncio", "urllib3", "aiohttp.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return publisher
