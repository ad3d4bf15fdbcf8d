"""``python -m services.api``: serve the dashboard and its API with uvicorn (``--check`` too)."""

from __future__ import annotations

import asyncio

import uvicorn
from redis.asyncio import Redis

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.routes.health import consumed_streams
from shared import metrics, streams
from shared.runner import run_service


async def main(settings: ApiSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    """Run uvicorn until the service is asked to stop."""
    # The api measures every consumer group's backlog too: it still moves while a consumer is down.
    metrics.watch_groups([*consumed_streams(settings.symbols), (streams.EXECUTOR_EVENTS, streams.GROUP_NOTIFIER)])
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
    # uvicorn picks uvloop only when it creates the loop itself; here the service runner does (uvloop's).
    run_service("api", ApiSettings, main)
