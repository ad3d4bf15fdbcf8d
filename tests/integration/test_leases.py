"""Symbol leases on a real redis-server: renewal through a Redis restart, fair share at once
after a replica died, the check before an irreversible action."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.leases import SymbolLeases
from tests.support.redis_server import start_redis

SERVICE = "svc"
SYMBOLS = ["AAAUSDT", "BBBUSDT"]


async def _nothing(symbol: str) -> None:
    return None


def leases(redis: Redis, instance: str, ttl_ms: int = 1000, symbols: list[str] = SYMBOLS) -> SymbolLeases:
    return SymbolLeases(redis, SERVICE, instance, symbols, _nothing, _nothing, ttl_ms=ttl_ms)


async def owner(redis: Redis, symbol: str) -> str | None:
    return await redis.get(streams.lease_key(SERVICE, symbol))


async def test_a_restarted_replica_takes_its_fair_share_as_soon_as_the_dead_leases_expire(redis_client: Redis) -> None:
    # Both processes wrote their heartbeat (as every service does); the dead one's stays for
    # its 10 s TTL, but a dead replica must stop counting once its leases expired.
    for instance in ("dead", "restarted"):
        await redis_client.set(streams.health_key(SERVICE, instance), "{}", ex=10)
    dead = leases(redis_client, "dead")
    await dead.rebalance()
    assert dead.owned == set(SYMBOLS)
    restarted = leases(redis_client, "restarted")
    started = time.monotonic()
    while len(restarted.owned) < 2 and time.monotonic() - started < 4:
        await restarted.rebalance()
        await asyncio.sleep(0.1)
    assert restarted.owned == set(SYMBOLS), f"owned {restarted.owned} after {time.monotonic() - started:.1f}s"
    assert time.monotonic() - started < 2.5


async def test_two_live_replicas_share_the_symbols_evenly(redis_client: Redis) -> None:
    first, second = leases(redis_client, "one"), leases(redis_client, "two")
    for _ in range(8):
        await first.rebalance()
        await second.rebalance()
        await asyncio.sleep(0.05)
    assert len(first.owned) == len(second.owned) == 1 and first.owned != second.owned
    await first.release_all()
    await second.rebalance()
    assert second.owned == set(SYMBOLS)  # a clean stop hands over at once


async def test_confirm_is_false_once_another_replica_holds_the_lease(redis_client: Redis) -> None:
    mine = leases(redis_client, "mine", symbols=SYMBOLS[:1])
    await mine.rebalance()
    assert await mine.confirm(SYMBOLS[0])
    assert await redis_client.pttl(streams.lease_key(SERVICE, SYMBOLS[0])) > 900
    await redis_client.set(streams.lease_key(SERVICE, SYMBOLS[0]), "thief", px=1000)
    assert not await mine.confirm(SYMBOLS[0])


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[tuple]:
    server = start_redis(tmp_path / "redis", appendonly=True)
    client = Redis.from_url(server.url, decode_responses=True, socket_timeout=2)
    state = {"server": server}
    yield client, state
    await client.aclose()
    state["server"].stop()


async def test_the_keep_alive_renews_through_a_redis_restart(restartable) -> None:
    client, state = restartable
    server = state["server"]
    mine = leases(client, "mine", ttl_ms=3000, symbols=SYMBOLS[:1])
    await mine.rebalance()
    stop = asyncio.Event()
    task = asyncio.create_task(mine.keep_alive(stop))
    try:
        await asyncio.sleep(1.5)  # the lease is in the append-only file (fsync every second)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(5)
        await asyncio.sleep(0.5)
        state["server"] = start_redis(server.folder, appendonly=True, port=server.port)
        # Far longer than the TTL: only renewals after the restart can keep the lease.
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            assert not task.done(), "the keep-alive task ended"
            await asyncio.sleep(0.25)
        assert await owner(client, SYMBOLS[0]) == "mine"
        assert mine.owned == {SYMBOLS[0]}
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_renewal_refused_while_the_rebalance_took_the_lease_again_keeps_it(redis_client: Redis) -> None:
    lost: list[str] = []

    async def on_lost(symbol: str) -> None:
        lost.append(symbol)

    mine = SymbolLeases(redis_client, SERVICE, "mine", SYMBOLS[:1], _nothing, on_lost, ttl_ms=5000)
    await mine.rebalance()
    real_renew = mine._renew
    calls = 0

    async def slow_refusal_first(symbol: str) -> bool:
        # The keep-alive's renewal reaches Redis after the lease expired, and its answer comes
        # back only after the rebalance has taken the symbol again.
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.3)
            return False
        return await real_renew(symbol)

    mine._renew = slow_refusal_first
    stop = asyncio.Event()
    keep_alive = asyncio.create_task(mine.keep_alive(stop))
    await asyncio.sleep(0.05)
    await redis_client.delete(streams.lease_key(SERVICE, SYMBOLS[0]))  # expired meanwhile
    await mine.rebalance()
    assert lost == [SYMBOLS[0]] and mine.owned == {SYMBOLS[0]}
    await asyncio.sleep(0.4)
    stop.set()
    await keep_alive
    assert mine.owned == {SYMBOLS[0]} and lost == [SYMBOLS[0]]
    assert await owner(redis_client, SYMBOLS[0]) == "mine"
