"""Service health for the dashboard and monitors: heartbeats, Redis, consumer-group backlog.

A group's ``lag`` is its real backlog (``shared.backlog``: entries after its last-delivered id),
not Redis' ``lag`` counter, which MAXLEN trimming leaves wrong.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from redis.exceptions import RedisError

from services.api.deps import RedisDep, SettingsDep
from shared import streams
from shared.backlog import backlogs
from shared.health import HEARTBEAT_TTL_S, read_heartbeats

router = APIRouter(prefix="/api", tags=["health"])
logger = logging.getLogger(__name__)


class ServiceHealth(BaseModel):
    service: str
    instance: str
    age_ms: int
    up: bool


class GroupHealth(BaseModel):
    stream: str
    group: str
    lag: int | None  # entries after the group's last-delivered id (at least this many when capped)
    pending: int
    consumers: int
    oldest_pending_age_ms: int | None = None  # Redis time since the oldest unacknowledged entry was added


class Health(BaseModel):
    status: str
    redis: bool
    services: list[ServiceHealth]
    groups: list[GroupHealth]


def consumed_streams(symbols: list[str]) -> list[tuple[str, str]]:
    """Each (stream, group) pair whose backlog says whether a service keeps up."""
    pairs = []
    for symbol in symbols:
        pairs.append((streams.kline_stream(symbol), streams.GROUP_STRATEGY))
        pairs.append((streams.ticker_stream(symbol), streams.GROUP_EXECUTOR))
        pairs.append((streams.executor_inbox(symbol), streams.GROUP_EXECUTOR))
    return pairs


@router.get("/health", responses={503: {"description": "Redis is not reachable"}})
async def health(redis: RedisDep, settings: SettingsDep, response: Response) -> Health:
    """Public: each service's heartbeat age, whether Redis answers, lag and pending per group."""
    try:
        await redis.ping()
        beats = await read_heartbeats(redis)
        found = await backlogs(redis, consumed_streams(settings.symbols))
    except (RedisError, OSError) as e:
        logger.warning("health: Redis not reachable: %s", e)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="down", redis=False, services=[], groups=[])
    services = [
        ServiceHealth(
            service=str(beat.get("service", "")),
            instance=str(beat.get("instance", "")),
            age_ms=int(beat["age_ms"]),
            up=int(beat["age_ms"]) <= HEARTBEAT_TTL_S * 1000,
        )
        for beat in beats
    ]
    known = [
        GroupHealth(
            stream=b.stream,
            group=b.group,
            lag=b.entries,
            pending=b.pending,
            consumers=b.consumers,
            oldest_pending_age_ms=b.oldest_pending_age_ms,
        )
        for b in found
    ]
    degraded = any(not service.up for service in services) or not services
    return Health(status="degraded" if degraded else "ok", redis=True, services=services, groups=known)
