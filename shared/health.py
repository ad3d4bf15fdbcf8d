"""Heartbeats: each service process refreshes ``health:<service>:<instance>`` with a TTL.

``python -m services.<name> --check`` exits 0 when a heartbeat of that service from this host
is fresh; compose healthchecks call it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from shared import metrics, streams
from shared.codec import dumps, loads
from shared.events import now_ms

HEARTBEAT_INTERVAL_S = 2.0
HEARTBEAT_TTL_S = 10


def instance_name(configured: str = "") -> str:
    """This process's name among replicas: ``INSTANCE_ID`` or ``<hostname>-<pid>``."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


async def heartbeat(
    redis: Redis, service: str, instance: str, stop: asyncio.Event, info: dict[str, Any] | None = None
) -> None:
    """Refresh the health key until ``stop``; delete it on the way out."""
    key = streams.health_key(service, instance)
    try:
        while not stop.is_set():
            body = {"service": service, "instance": instance, "pid": os.getpid(), "ts_ms": now_ms(), **(info or {})}
            try:
                await redis.set(key, dumps(body), ex=HEARTBEAT_TTL_S)
                metrics.HEARTBEAT.labels(service).set(body["ts_ms"] / 1000)
            except Exception:  # noqa: BLE001 - Redis outage: the key simply expires
                pass
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_INTERVAL_S)
            except TimeoutError:
                pass
    finally:
        try:
            await redis.delete(key)
        except Exception:  # noqa: BLE001 - on the way out; the key expires by itself anyway
            pass


async def read_heartbeats(redis: Redis) -> list[dict[str, Any]]:
    """Every live heartbeat with its age in ms."""
    result = []
    async for key in redis.scan_iter(match=streams.health_key("*", "*"), count=200):
        body = loads(await redis.get(key))
        if body:
            body["age_ms"] = now_ms() - int(body.get("ts_ms", 0))
            result.append(body)
    return sorted(result, key=lambda item: (item["service"], item["instance"]))


def check(redis_url: str, service: str, max_age_ms: int = HEARTBEAT_TTL_S * 1000) -> int:
    """Exit status for ``--check``: 0 when this host has a fresh heartbeat of ``service``."""
    host = socket.gethostname()
    try:
        client = SyncRedis.from_url(redis_url, decode_responses=True, socket_timeout=3)
        for key in client.scan_iter(match=streams.health_key(service, "*"), count=200):
            body = loads(client.get(key))
            if body and str(body.get("instance", "")).startswith(host) and now_ms() - int(body["ts_ms"]) <= max_age_ms:
                return 0
            if body and os.environ.get("INSTANCE_ID") and body.get("instance") == os.environ["INSTANCE_ID"]:
                return 0
    except Exception as e:  # noqa: BLE001 - any failure means unhealthy
        print(f"unhealthy: {e}")
        return 1
    print(f"unhealthy: no fresh heartbeat for {service} on {host}")
    return 1
