"""market_data's Redis writes on a real redis-server: the clock and freshness of a back-fill."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from services.market_data.publisher import Publisher
from shared import streams
from shared.events import now_ms

pytestmark = pytest.mark.integration


async def test_a_restart_back_fill_refreshes_freshness_and_never_moves_the_clock_back(redis_client: Redis) -> None:
    # Before the restart: the last live message, long ago in wall time, and a market clock.
    await redis_client.hset(streams.MARKET_FRESHNESS, "BTCUSDT", now_ms() - 60_000)
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", 2_000_000)
    publisher = Publisher(redis_client)

    before = now_ms()
    await publisher.advance_clock("BTCUSDT", 3_000_000)  # the exchange's forming candle, just read
    assert int(await redis_client.hget(streams.MARKET_CLOCK, "BTCUSDT")) == 3_000_000
    assert int(await redis_client.hget(streams.MARKET_FRESHNESS, "BTCUSDT")) >= before

    await publisher.advance_clock("BTCUSDT", 1_000_000)
    assert int(await redis_client.hget(streams.MARKET_CLOCK, "BTCUSDT")) == 3_000_000
