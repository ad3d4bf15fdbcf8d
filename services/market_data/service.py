"""market_data: market streams and user data, each in its own resilient loop."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.market_data.config import MarketDataSettings
from services.market_data.feed import MarketFeed
from services.market_data.publisher import Publisher
from services.market_data.userdata import UserDataFeed


async def run(settings: MarketDataSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    """Run both feeds until ``stop``."""
    publisher = Publisher(redis)
    tasks = [
        asyncio.create_task(MarketFeed(settings, publisher).run(stop), name="market-feed"),
        asyncio.create_task(UserDataFeed(settings, publisher).run(stop), name="user-data"),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
