"""Start-up steps of the executor process: the ledger database and the exchange client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from binance import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.executor.config import ExecutorSettings
from shared.backoff import Backoff
from shared.binance_client import open_client
from shared.store.database import migrate, open_engine

logger = logging.getLogger("services.executor")


async def with_retries[T](what: str, action: Callable[[], Awaitable[T]], attempts: int = 20) -> T:
    """Run ``action``, retrying with a growing pause (replicas starting together on one SQLite
    file can meet "database is locked" while the first one switches it to WAL)."""
    for attempt in range(1, attempts + 1):
        try:
            return await action()
        except Exception as e:
            if attempt == attempts:
                raise
            logger.warning("%s failed (%s: %s); retrying", what, type(e).__name__, e)
            await asyncio.sleep(0.25 * attempt)
    raise AssertionError("unreachable")


async def prepare_database(settings: ExecutorSettings) -> AsyncEngine:
    """Migrate ``DATABASE_URL`` to the latest schema and open an engine that can connect."""
    await with_retries("database migration", lambda: asyncio.to_thread(migrate, settings.database_url))
    engine = open_engine(settings.database_url)

    async def first_connection() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await with_retries("database connection", first_connection)
    except Exception:
        await engine.dispose()
        raise
    return engine


async def connect_exchange(
    settings: ExecutorSettings, stop: asyncio.Event, backoff: Backoff | None = None
) -> AsyncClient | None:
    """An exchange client, retried until it answers (None if stopped first). The pauses start
    short and double up to 2 s: an exchange that comes up just after us is reached within a
    fraction of a second, not a whole pause later, while its market (a replay's clock) runs on."""
    backoff = backoff or Backoff(base_s=0.25, cap_s=2.0)
    while not stop.is_set():
        try:
            return await open_client(settings)
        except Exception as e:  # noqa: BLE001 - the exchange may come up after us
            logger.warning("exchange not reachable (%s: %s); retrying", type(e).__name__, e)
            try:
                await asyncio.wait_for(stop.wait(), backoff.next_delay())
            except TimeoutError:
                pass
    return None
