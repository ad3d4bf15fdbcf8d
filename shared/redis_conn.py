"""Connecting to Redis with a bounded, visible retry at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


QUIET_ATTEMPTS = 5  # Redis starting up at the same time is normal, not yet worth a warning


async def connect_redis(url: str, attempts: int = 30, delay_s: float = 1.0) -> Redis:
    """Open a client on ``url`` and wait until Redis answers PING (``attempts`` tries).

    The first few failures are logged as waiting (info); only later ones as a warning.
    """
    client = Redis.from_url(url, decode_responses=True, health_check_interval=30)
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
            return client
        except (RedisConnectionError, OSError) as e:
            if attempt == attempts:
                await client.aclose()
                raise
            level = logging.INFO if attempt <= QUIET_ATTEMPTS else logging.WARNING
            logger.log(level, "waiting for redis (%s); %d retries remaining", e, attempts - attempt)
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


async def with_redis_retries[T](
    call: Callable[[], Awaitable[T]], what: str, attempts: int = 30, delay_s: float = 1.0
) -> T:
    """Run one start-up step that reads or writes Redis, again while Redis is unreachable or
    still loading its AOF (``attempts`` tries): Redis answering PING a moment ago does not
    mean it still does (a restart between two steps made a starting process exit)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            if attempt == attempts:
                raise
            level = logging.INFO if attempt <= QUIET_ATTEMPTS else logging.WARNING
            logger.log(level, "%s: waiting for redis (%s); %d retries remaining", what, e, attempts - attempt)
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")
