"""What the Prometheus metrics cost the hot path (a script that prints tables; nothing is asserted).

1. A bus consumer handling entries of a real redis-server with a no-op handler, metrics on (as
   shipped) against metrics off (the two ``shared.metrics`` calls of ``Consumer._handle_entry``
   replaced by no-ops), in alternating rounds of the same run so machine load hits both alike.
2. The two calls alone (counter + histogram, children cached), per entry.
3. One scrape: rendering the registry after the run.

    .venv/bin/python bench/bench_metrics.py [--entries 5000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redis.asyncio import Redis

from shared import bus, metrics
from shared.events import Envelope, ExecutorAlert, make_event
from tests.support.redis_server import start_redis


class _Off:
    """``shared.metrics`` as the bus sees it, with the two per-entry calls doing nothing."""

    def __getattr__(self, name: str) -> object:
        return getattr(metrics, name)

    @staticmethod
    def count_event(*_: object) -> None:
        return None

    @staticmethod
    def observe_handler(*_: object) -> None:
        return None


async def consume(redis: Redis, stream: str, entries: int, metrics_on: bool) -> float:
    """Seconds to consume ``entries`` fresh entries of ``stream`` with a no-op handler."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(entries):
            event = make_event(ExecutorAlert(level="info", code=f"c{i % 7}", message="m"), "bench")
            pipe.xadd(stream, bus.stream_fields(event))
        await pipe.execute()

    async def handler(_: str, __: Envelope) -> None:
        return None

    vars(bus)["metrics"] = metrics if metrics_on else _Off()
    try:
        consumer = bus.Consumer(redis, group="bench", name="c", handler=handler, streams_to_read=[stream], count=500)
        started = time.perf_counter()
        handled = 0
        while handled < entries:
            handled += await consumer.poll_once()
        return time.perf_counter() - started
    finally:
        vars(bus)["metrics"] = metrics


def calls_alone(n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        metrics.count_event("bench", "bench:calls", "executor_alert", "handled")
        metrics.observe_handler("bench", "bench:calls", 0.0001)
    return (time.perf_counter() - started) / n


async def main(entries: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder) / "redis")
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            results: dict[bool, list[float]] = {True: [], False: []}
            await consume(redis, "bench:warm", 500, True)
            for index in range(rounds * 2):
                on = index % 2 == 0
                seconds = await consume(redis, f"bench:{index}", entries, on)
                results[on].append(seconds / entries * 1e6)
        finally:
            await redis.aclose()
            server.stop()
    load = os.getloadavg()[0]
    print(f"\nbus consumer, no-op handler, {entries} entries x {rounds} rounds each (load average {load:.1f})")
    print(f"{'metrics':<10}{'median us/entry':>18}{'best us/entry':>16}")
    for on in (False, True):
        label = "on" if on else "off"
        print(f"{label:<10}{statistics.median(results[on]):>18.1f}{min(results[on]):>16.1f}")
    overhead = statistics.median(results[True]) - statistics.median(results[False])
    print(f"overhead: {overhead:+.1f} us/entry ({overhead / statistics.median(results[False]) * 100:+.1f} %)")
    alone = calls_alone(100_000) * 1e6
    print(f"\nthe two per-entry calls alone: {alone:.2f} us/entry")
    started = time.perf_counter()
    body, _ = metrics.exposition()
    print(f"one scrape: {(time.perf_counter() - started) * 1000:.2f} ms, {len(body)} bytes\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.rounds))
