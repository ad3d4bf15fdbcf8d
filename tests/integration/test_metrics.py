"""``shared.metrics`` on a real Redis and a real socket: the consumer-group backlog from the
last-delivered id, the bus counters, and the ``/metrics`` endpoint (port steps, 404, off)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from shared import metrics
from shared.backlog import COUNT_CHUNK, backlogs
from shared.bus import Consumer, ensure_group, publish
from shared.events import Envelope, ExecutorAlert, make_event
from tests.support.ports import free_port


def alert(code: str) -> Envelope:
    return make_event(ExecutorAlert(level="info", code=code, message="m"), "test")


def value(gauge: object, *labels: str) -> float:
    return float(gauge.labels(*labels)._value.get())  # type: ignore[attr-defined]


async def test_the_backlog_counts_entries_after_the_last_delivered_id_even_after_a_trim(redis_client: Redis) -> None:
    stream, group = "test:metrics:backlog", "g"
    await ensure_group(redis_client, stream, group, "0")
    for i in range(5):
        await publish(redis_client, stream, alert(f"a{i}"))
    await metrics.measure_groups(redis_client, [(stream, group)])
    assert value(metrics.BACKLOG_ENTRIES, group, stream) == 5

    seen: list[str] = []

    async def handler(_: str, event: Envelope) -> None:
        seen.append(event.event_id)

    consumer = Consumer(redis_client, group=group, name="c", handler=handler, streams_to_read=[stream], count=3)
    await consumer.poll_once()
    await metrics.measure_groups(redis_client, [(stream, group)])
    assert value(metrics.BACKLOG_ENTRIES, group, stream) == 2
    assert value(metrics.PENDING, group, stream) == 0
    # Trimmed away under the group (Redis' own lag becomes unknown then): still two behind.
    await redis_client.xtrim(stream, maxlen=2)
    await metrics.measure_groups(redis_client, [(stream, group)])
    assert value(metrics.BACKLOG_ENTRIES, group, stream) == 2
    await consumer.poll_once()
    await metrics.measure_groups(redis_client, [(stream, group)])
    assert value(metrics.BACKLOG_ENTRIES, group, stream) == 0
    assert value(metrics.BACKLOG_SECONDS, group, stream) == 0
    handled = metrics.EVENTS.labels(group, stream, "executor_alert", "handled")._value.get()
    assert handled == len(seen) == 5


async def test_the_endpoint_serves_the_text_format_steps_past_a_taken_port_and_is_off_at_zero() -> None:
    assert await metrics.serve("127.0.0.1", 0) is None
    port = free_port()
    first = await metrics.serve("127.0.0.1", port)
    second = await metrics.serve("127.0.0.1", port)
    assert first is not None and second is not None
    try:
        assert metrics.bound_port(first) == port
        assert metrics.bound_port(second) == port + metrics.PORT_STEP
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port + metrics.PORT_STEP}/metrics")
            other = await client.get(f"http://127.0.0.1:{port}/")
        assert answer.status_code == 200
        names = {f.name for f in text_string_to_metric_families(answer.text)}
        assert {"bot_bus_events", "bot_consumer_backlog_entries", "bot_lease_owned"} <= names
        assert other.status_code == 404
    finally:
        for server in (first, second):
            server.close()
            await server.wait_closed()
    await asyncio.sleep(0)


async def test_the_backlog_is_counted_in_redis_and_alike_by_a_user_without_scripts(redis_client: Redis) -> None:
    # More streams than one counting script call takes, each behind by its index (0..59).
    group = "g"
    pairs = [(f"test:metrics:many:{i}", group) for i in range(COUNT_CHUNK + 10)]
    async with redis_client.pipeline(transaction=False) as pipe:
        for index, (stream, _) in enumerate(pairs):
            pipe.xgroup_create(stream, group, id="0", mkstream=True)
            for n in range(index):
                pipe.xadd(stream, {"n": str(n)})
        await pipe.execute()
    counted = await backlogs(redis_client, pairs, cap=50)
    assert [b.entries for b in counted] == [min(i, 50) for i in range(len(pairs))]
    assert [b.capped for b in counted] == [i >= 50 for i in range(len(pairs))]
    # A user that may not run scripts (the api's) counts the same with XRANGE.
    await redis_client.execute_command("ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "+@all", "-eval", "-evalsha")
    url = redis_client.connection_pool.connection_kwargs
    plain = Redis(host=url.get("host", "127.0.0.1"), port=url["port"], username="noscripts", password="pw")
    try:
        with pytest.raises(NoPermissionError):
            await plain.eval("return 1", 0)
        assert await backlogs(plain, pairs, cap=50) == counted
    finally:
        await plain.aclose()
        await redis_client.execute_command("ACL", "DELUSER", "noscripts")
