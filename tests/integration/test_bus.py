"""The bus against a real redis-server: groups, ack, reclaim after SIGKILL, dead letters."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.bus import AckLater, Consumer, ensure_group, publish, publish_atomically
from shared.events import Envelope, ExecutorAlert, Signal, make_event

ROOT = Path(__file__).resolve().parents[2]


def alert(code: str = "x") -> Envelope:
    return make_event(ExecutorAlert(level="info", code=code, message="m"), "test")


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_group_creation_twice_is_harmless(redis_client: Redis) -> None:
    await ensure_group(redis_client, "s", "g")
    await ensure_group(redis_client, "s", "g")
    groups = await redis_client.xinfo_groups("s")
    assert [g["name"] for g in groups] == ["g"]


async def test_entry_is_acknowledged_only_after_the_handler_succeeds(redis_client: Redis) -> None:
    seen: list[str] = []
    attempts = 0

    async def handler(stream: str, event: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("transient")
        seen.append(event.event_id)

    event = alert()
    await publish(redis_client, "s", event)
    consumer = Consumer(
        redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50, retry_delay_s=0
    )
    await consumer.poll_once()
    pending = await redis_client.xpending("s", "g")
    assert pending["pending"] == 1 and seen == []
    await consumer.poll_once()
    assert seen == [event.event_id]
    assert (await redis_client.xpending("s", "g"))["pending"] == 0


async def test_an_entry_acked_later_stays_pending_until_the_publish_that_acknowledges_it(redis_client: Redis) -> None:
    held: list[str] = []

    async def handler(stream: str, event: Envelope) -> None:
        if event.payload.code == "held":
            held.append(consumer.current_entry_id or "")
            raise AckLater
        await publish_atomically(
            redis_client, [("out", alert("result"))], acks=[(stream, "g", entry) for entry in held]
        )

    for code in ("held", "held", "last"):
        await publish(redis_client, "s", alert(code))
    consumer = Consumer(redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50)
    await consumer.poll_once()
    assert len(held) == 2 and await redis_client.xlen("out") == 1  # the stream went on past the held entries
    assert (await redis_client.xpending("s", "g"))["pending"] == 0  # acknowledged by that publish
    assert not await redis_client.exists(streams.failures_key("g", "s"))


async def test_failed_entry_blocks_later_entries_of_the_same_stream(redis_client: Redis) -> None:
    order: list[str] = []
    fail_first = True

    async def handler(stream: str, event: Envelope) -> None:
        nonlocal fail_first
        code = event.payload.code
        if code == "a" and fail_first:
            fail_first = False
            raise RuntimeError("boom")
        order.append(code)

    for code in "abc":
        await publish(redis_client, "s", alert(code))
    consumer = Consumer(
        redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50, retry_delay_s=0
    )
    for _ in range(4):
        await consumer.poll_once()
    assert order == ["a", "b", "c"]


async def test_undecodable_entry_goes_to_dead_letter_with_the_error(redis_client: Redis) -> None:
    await redis_client.xadd("s", {"type": "no_such_type", "event_id": "e1"})
    await redis_client.xadd(
        "s", {"type": "signal", "event_id": "e2", "ts_event_ms": "1", "ts_init_ms": "1", "symbol": "BTCUSDT"}
    )
    handled: list[str] = []

    async def handler(stream: str, event: Envelope) -> None:
        handled.append(event.event_id)

    consumer = Consumer(redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50)
    await consumer.poll_once()
    dead = await redis_client.xrange(streams.deadletter_stream("s"))
    assert [fields["event_id"] for _, fields in dead] == ["e1", "e2"]
    assert "unknown event type 'no_such_type'" in dead[0][1]["dl_error"]
    assert "side" in dead[1][1]["dl_error"]  # names the missing field
    assert handled == []
    assert (await redis_client.xpending("s", "g"))["pending"] == 0


async def test_entry_failing_every_time_is_dead_lettered_after_max_deliveries(redis_client: Redis) -> None:
    calls = 0

    async def handler(stream: str, event: Envelope) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("always broken")

    await publish(redis_client, "s", alert())
    consumer = Consumer(
        redis_client,
        group="g",
        name="c1",
        handler=handler,
        streams_to_read=["s"],
        block_ms=50,
        max_deliveries=3,
        retry_delay_s=0,
    )
    for _ in range(5):
        await consumer.poll_once()
    assert calls == 3
    dead = await redis_client.xrange(streams.deadletter_stream("s"))
    assert len(dead) == 1 and "ValueError: always broken" in dead[0][1]["dl_error"]
    assert (await redis_client.xpending("s", "g"))["pending"] == 0


async def test_dedupe_skips_an_event_already_applied(redis_client: Redis) -> None:
    applied: list[str] = []

    async def handler(stream: str, event: Envelope) -> None:
        applied.append(event.event_id)

    event = alert()
    await publish(redis_client, "s", event)
    await publish(redis_client, "s", event)  # the same event published twice (producer retry)
    consumer = Consumer(
        redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50, dedupe=True
    )
    await consumer.poll_once()
    assert applied == [event.event_id]


async def test_publish_trims_to_approximate_maxlen(redis_client: Redis) -> None:
    stream = streams.LOGS
    limit = streams.maxlen_for(stream)
    async with redis_client.pipeline(transaction=False) as pipe:
        for _ in range(limit * 3):
            pipe.xadd(stream, {"k": "v"})
        await pipe.execute()
    await publish(redis_client, stream, alert())
    length = await redis_client.xlen(stream)
    assert limit <= length < limit * 2


async def test_publish_atomically_writes_every_stream(redis_client: Redis) -> None:
    event = alert()
    await publish_atomically(redis_client, [("a", event), ("b", event)])
    assert await redis_client.xlen("a") == 1 and await redis_client.xlen("b") == 1


async def test_signal_entry_reads_in_plain_words_with_redis_cli(redis_client: Redis, redis_server) -> None:
    signal_event = make_event(
        Signal(
            symbol="BTCUSDT",
            side="BUY",
            reason="ema_cross_up",
            price=Decimal("105123.45"),
            interval="1m",
            candle_open_time_ms=1747699200000,
            indicators={"rsi": 55.5},
            parameters_version=1,
        ),
        "strategy",
    )
    await publish(redis_client, streams.SIGNALS, signal_event)
    output = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "XRANGE", streams.SIGNALS, "-", "+"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pairs = dict(zip(output[1::2], output[2::2], strict=True))
    assert pairs["symbol"] == "BTCUSDT"
    assert pairs["side"] == "BUY"
    assert pairs["price"] == "105123.45"
    assert pairs["reason"] == "ema_cross_up"


@pytest.mark.integration
async def test_entry_of_a_killed_consumer_is_reclaimed_and_applied_once(redis_client: Redis, redis_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    slow = subprocess.Popen(
        [sys.executable, "-m", "tests.support.bus_worker", redis_url, "slow", "500", "30"], cwd=ROOT, env=env
    )
    try:
        await wait_for(lambda: _contains(redis_client, "ready", "slow"))
        event = alert()
        await publish(redis_client, "work", event)
        await wait_for(lambda: _contains(redis_client, "started", f"slow:{event.event_id}"))
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(5)
        assert await redis_client.scard("applied_ids") == 0
        rescuer = subprocess.Popen(
            [sys.executable, "-m", "tests.support.bus_worker", redis_url, "rescuer", "500", "0"], cwd=ROOT, env=env
        )
        try:
            await wait_for(lambda: _contains(redis_client, "applied_by", f"rescuer:{event.event_id}"))
            await asyncio.sleep(1.5)  # several more claim rounds: nothing may be applied again
            assert await redis_client.lrange("applied_by", 0, -1) == [f"rescuer:{event.event_id}"]
            assert (await redis_client.xpending("work", "workers"))["pending"] == 0
        finally:
            rescuer.kill()
            rescuer.wait(5)
    finally:
        if slow.poll() is None:
            slow.kill()


async def _contains(redis: Redis, key: str, value: str) -> bool:
    return value in await redis.lrange(key, 0, -1)


async def test_entries_of_several_streams_are_handled_in_arrival_order(redis_client: Redis) -> None:
    order: list[str] = []

    async def handler(stream: str, event: Envelope) -> None:
        order.append(event.payload.code)

    # "b" sorts before "z" by name, but "z" received its entry first.
    for stream, code in (("z", "first"), ("b", "second"), ("z", "third")):
        await publish(redis_client, stream, alert(code))
        await asyncio.sleep(0.003)  # ids of different streams only order across milliseconds
    consumer = Consumer(redis_client, group="g", name="c1", handler=handler, streams_to_read=["b", "z"], block_ms=50)
    await consumer.poll_once()
    assert order == ["first", "second", "third"]


async def test_a_stream_read_only_in_part_holds_back_later_entries_of_other_streams(redis_client: Redis) -> None:
    order: list[str] = []

    async def handler(stream: str, event: Envelope) -> None:
        order.append(event.payload.code)

    # Five ticks, then a signal: with two entries read per stream and poll, the signal must still
    # come after every tick, not after the first two.
    for code in ("t1", "t2", "t3", "t4", "t5"):
        await publish(redis_client, "ticks", alert(code))
        await asyncio.sleep(0.002)
    await publish(redis_client, "signals", alert("signal"))
    consumer = Consumer(
        redis_client, group="g", name="c1", handler=handler, streams_to_read=["signals", "ticks"], block_ms=50, count=2
    )
    for _ in range(6):
        await consumer.poll_once()
    assert order == ["t1", "t2", "t3", "t4", "t5", "signal"]
    assert (await redis_client.xpending("ticks", "g"))["pending"] == 0
    assert (await redis_client.xpending("signals", "g"))["pending"] == 0


def _worker(redis_url: str, name: str, pause_s: float, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.bus_worker", redis_url, name, "0", str(pause_s), *extra],
        cwd=ROOT,
        env=env,
    )


@pytest.mark.integration
async def test_a_takeover_merges_claimed_entries_with_older_unread_entries_of_other_streams(
    redis_client: Redis, redis_url: str
) -> None:
    # Five ticks, then a signal. The owner reads two entries per stream: t1, t2 and the signal,
    # which it holds back behind t2 (the tick stream was read in part); it is killed while
    # handling t1. Its pending list then holds t1, t2 and the signal; t3..t5 were never read.
    ids: dict[str, str] = {}
    for code in ("t1", "t2", "t3", "t4", "t5"):
        ids[(await _publish(redis_client, "ticks", code))] = code
        await asyncio.sleep(0.003)
    ids[(await _publish(redis_client, "inbox", "signal"))] = "signal"
    owner = _worker(redis_url, "owner", 30, "inbox,ticks", "2")
    try:
        await wait_for(lambda: _started(redis_client, "owner"), 15)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(5)
    finally:
        if owner.poll() is None:
            owner.kill()
    assert len(await redis_client.xpending_range("inbox", "workers", "-", "+", 10)) == 1
    heir = _worker(redis_url, "heir", 0, "inbox,ticks", "2")
    try:
        await wait_for(lambda: _applied_count(redis_client, 6), 15)
        applied = [ids[item.split(":", 1)[1]] for item in await redis_client.lrange("applied_by", 0, -1)]
        assert applied == ["t1", "t2", "t3", "t4", "t5", "signal"]
    finally:
        heir.kill()
        heir.wait(5)


@pytest.mark.integration
async def test_consumers_killed_in_turn_holding_an_entry_never_dead_letter_it(
    redis_client: Redis, redis_url: str
) -> None:
    # Every takeover claims the entry and reads it again (two deliveries each), but no handler
    # ever failed: the sixth consumer handles it.
    event = alert("survivor")
    await publish(redis_client, "work", event)
    for number in range(1, 6):
        name = f"doomed{number}"
        worker = _worker(redis_url, name, 30)
        try:
            await wait_for(lambda n=name: _contains(redis_client, "started", f"{n}:{event.event_id}"), 15)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(5)
        finally:
            if worker.poll() is None:
                worker.kill()
    [pending] = await redis_client.xpending_range("work", "workers", "-", "+", 10)
    assert pending["times_delivered"] > 5  # the stream's own counter says "delivered often"
    last = _worker(redis_url, "sixth", 0)
    try:
        await wait_for(lambda: _contains(redis_client, "applied_by", f"sixth:{event.event_id}"), 15)

        async def acknowledged() -> bool:  # the acknowledgement follows the handler's own write
            return (await redis_client.xpending("work", "workers"))["pending"] == 0

        await wait_for(acknowledged, 15)
        assert await redis_client.xlen(streams.deadletter_stream("work")) == 0
        assert not await redis_client.exists(streams.failures_key("workers", "work"))
    finally:
        last.kill()
        last.wait(5)


async def test_a_handler_failure_counts_in_the_bus_key_and_success_clears_it(redis_client: Redis) -> None:
    failures = 2

    async def handler(stream: str, event: Envelope) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("transient")

    await publish(redis_client, "s", alert())
    consumer = Consumer(
        redis_client, group="g", name="c1", handler=handler, streams_to_read=["s"], block_ms=50, retry_delay_s=0
    )
    await consumer.poll_once()
    await consumer.poll_once()
    [(_entry_id, count)] = (await redis_client.hgetall(streams.failures_key("g", "s"))).items()
    assert count == "2"
    await consumer.poll_once()
    assert (await redis_client.xpending("s", "g"))["pending"] == 0
    assert not await redis_client.exists(streams.failures_key("g", "s"))


async def _publish(redis: Redis, stream: str, code: str) -> str:
    event = alert(code)
    await publish(redis, stream, event)
    return event.event_id


async def _started(redis: Redis, name: str) -> bool:
    return any(item.startswith(f"{name}:") for item in await redis.lrange("started", 0, -1))


async def _applied_count(redis: Redis, count: int) -> bool:
    return await redis.llen("applied_by") >= count
