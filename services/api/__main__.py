"""``python -m services.api``: serve the dashboard and its API with uvicorn (``--check`` too)."""

from __future__ import annotations

import asyncio

import uvicorn
from redis.asyncio import Redis

from services.api.app import create_app
from services.api.config import ApiSettings
from shared.runner import run_service

try:
    import uvloop
except ImportError:  # not built for every platform; asyncio's loop serves the same, slower
    uvloop = None  # type: ignore[assignment]


async def main(settings: ApiSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    """Run uvicorn until the service is asked to stop."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # records go through the service's logging (stderr + logs stream)
        access_log=False,
        # Forwarded headers are handled inside the app, and only from FORWARDED_ALLOW_IPS.
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    stopping.cancel()
    if not server.started:
        raise RuntimeError(f"the api could not start on {settings.api_host}:{settings.api_port}")


if __name__ == "__main__":
    # uvicorn picks uvloop only when it creates the loop itself; here the service runner does.
    run_service("api", ApiSettings, main, loop_factory=uvloop.new_event_loop if uvloop else None)
