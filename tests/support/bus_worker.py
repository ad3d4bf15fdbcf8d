"""A consumer process for the crash tests: handles ``work`` entries and can be SIGKILLed.

Usage: python -m tests.support.bus_worker REDIS_URL NAME CLAIM_IDLE_MS PAUSE_S [STREAMS [COUNT]]
The handler records that it started, waits ``PAUSE_S`` (the window in which a test kills it),
then applies an effect that is idempotent by event_id and records who applied it, in order.
``STREAMS`` (comma-separated, default ``work``) and ``COUNT`` (entries per stream and read,
default 100) shape the reads.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from shared.bus import Consumer
from shared.events import Envelope


async def main(
    url: str, name: str, claim_idle_ms: int, pause_s: float, stream_names: str = "work", count: int = 100
) -> None:
    redis = Redis.from_url(url, decode_responses=True)

    async def handle(stream: str, event: Envelope) -> None:
        await redis.rpush("started", f"{name}:{event.event_id}")
        await asyncio.sleep(pause_s)
        # The effect itself is keyed by event_id, so a redelivery cannot apply it twice.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.sadd("applied_ids", event.event_id)
            pipe.rpush("applied_by", f"{name}:{event.event_id}")
            await pipe.execute()

    consumer = Consumer(
        redis,
        group="workers",
        name=name,
        handler=handle,
        streams_to_read=stream_names.split(","),
        claim_idle_ms=claim_idle_ms,
        block_ms=100,
        dedupe=True,
        count=count,
    )
    await redis.rpush("ready", name)
    await consumer.run(asyncio.Event())


if __name__ == "__main__":
    extra = sys.argv[5:7]
    asyncio.run(
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), *extra[:1], *(int(c) for c in extra[1:]))
    )
