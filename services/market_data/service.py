"""market_data: market streams and user data, each in its own resilient loop."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.market_data.config import MarketDataSettings
from services.market_data.feed import MarketFeed
from services.market_data.publisher import Publisher
from services.market_data.userdata import UserDataFeed
from shared.request_weight import WeightBudget


async def run(settings: MarketDataSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    """Run both feeds until ``stop``."""
    publisher = Publisher(redis)
    # One share for both feeds' REST reads; half of it is kept for the candles back-filled at a
    # (re)connect and after a gap, which go before the trade catch-up (at 500 symbols 10,000
    # weight, and spent in the first two seconds otherwise).
    budget = WeightBudget(settings.request_weight_share, reserve=settings.request_weight_share // 2)
    tasks = [
        asyncio.create_task(MarketFeed(settings, publisher, budget).run(stop), name="market-feed"),
        asyncio.create_task(UserDataFeed(settings, publisher, budget).run(stop), name="user-data"),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
