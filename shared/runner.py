"""The common life cycle of a service process: settings, logging, Redis, heartbeat, signals.

``python -m services.<name>`` calls ``run_service``; ``--check`` exits 0/1 on the heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from shared import health, metrics, signing
from shared.logs import setup_logging
from shared.redis_conn import connect_redis
from shared.settings import ServiceSettings, load_settings

ServiceMain = Callable[[Any, Redis, asyncio.Event, str], Awaitable[None]]

logger = logging.getLogger(__name__)


def default_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a fifth faster on the bus's round trips
    here), asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:  # not on every platform (Windows)
        return None
    return uvloop.new_event_loop


def run_service[SettingsT: ServiceSettings](
    service: str,
    settings_cls: type[SettingsT],
    main: ServiceMain,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Parse ``--check``, load settings, then run ``main(settings, redis, stop, instance)``
    (on the event loop ``loop_factory`` makes, uvloop's where installed by default)."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("--check", action="store_true", help="exit 0 if this service is healthy on this host")
    args = parser.parse_args()
    settings = load_settings(settings_cls)
    if args.check:
        sys.exit(health.check(settings.redis_url, service))
    key = settings.signing_key()
    if key is None and service in signing.KEY_HOLDERS:
        print(
            "configuration error:\n  BUS_SIGNING_KEY: required (or BUS_SIGNING_KEY_FILE); "
            "`make run` creates var/secrets/bus-signing.key",
            file=sys.stderr,
        )
        raise SystemExit(2)
    signing.install(key)
    try:
        asyncio.run(_serve(service, settings, main), loop_factory=loop_factory or default_loop_factory())
    except KeyboardInterrupt:
        pass


async def _serve(service: str, settings: ServiceSettings, main: ServiceMain) -> None:
    publisher = setup_logging(service, settings.log_level)
    instance = health.instance_name(settings.instance_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    redis = await connect_redis(settings.redis_url)
    background = [
        asyncio.create_task(health.heartbeat(redis, service, instance, stop), name="heartbeat"),
        asyncio.create_task(publisher.run(redis, stop), name="log-publisher"),
        asyncio.create_task(metrics.watch_consumers(redis, stop), name="metrics-backlog"),
    ]
    exporter = await metrics.serve(settings.metrics_host, settings.metrics_port(service))
    logger.info("starting service=%s instance=%s env=%s", service, instance, settings.binance_env)
    try:
        await main(settings, redis, stop, instance)
    except Exception:
        logger.exception("service=%s crashed", service)
        raise
    finally:
        stop.set()
        if exporter is not None:
            exporter.close()
        logger.info("stopped service=%s instance=%s", service, instance)
        await asyncio.gather(*background, return_exceptions=True)
        await redis.aclose()
