"""``python -m services.executor``: places and manages orders for the symbols it holds leases of."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.executor.config import ExecutorSettings
from services.executor.exchange import Exchange
from services.executor.service import Executor
from services.executor.startup import connect_exchange, prepare_database
from shared.binance_client import close_client
from shared.request_weight import WeightBudget
from shared.runner import run_service
from shared.store.database import session_factory


async def main(settings: ExecutorSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    engine = await prepare_database(settings)
    client = None
    try:
        client = await connect_exchange(settings, stop)
        if client is None:
            return
        exchange = Exchange(
            client,
            request_timeout_s=settings.order_timeout_s,
            max_wait_s=settings.max_retry_after_wait_s,
            budget=WeightBudget(settings.request_weight_share),
        )
        await Executor(settings, redis, session_factory(engine), exchange, instance).run(stop)
    finally:
        if client is not None:
            await close_client(client)
        await engine.dispose()


if __name__ == "__main__":
    run_service("executor", ExecutorSettings, main)
