"""Service health for the dashboard and monitors: heartbeats, Redis, consumer-group lag."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from services.api.deps import RedisDep, SettingsDep
from shared import streams
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
    lag: int | None
    pending: int
    consumers: int


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


async def _group_health(redis: RedisDep, stream: str, group: str) -> GroupHealth | None:
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet
        return None
    for info in groups:
        if info.get("name") == group:
            lag = info.get("lag")
            return GroupHealth(
                stream=stream,
                group=group,
                lag=None if lag is None else int(lag),
                pending=int(info.get("pending", 0)),
                consumers=int(info.get("consumers", 0)),
            )
    return None


@router.get("/health", responses={503: {"description": "Redis is not reachable"}})
async def health(redis: RedisDep, settings: SettingsDep, response: Response) -> Health:
    """Public: each service's heartbeat age, whether Redis answers, lag and pending per group."""
    try:
        await redis.ping()
        beats = await read_heartbeats(redis)
        groups = [await _group_health(redis, stream, group) for stream, group in consumed_streams(settings.symbols)]
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
    known = [group for group in groups if group is not None]
    degraded = any(not service.up for service in services) or not services
    return Health(status="degraded" if degraded else "ok", redis=True, services=services, groups=known)
