"""Recent entries of the human-readable streams: signals, decisions, logs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep
from shared import streams
from shared.codec import DecodeError, decode

router = APIRouter(prefix="/api", tags=["feeds"], dependencies=Protected)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Filters are applied while scanning back; this bounds the scan.
SCAN_FACTOR = 20


class FeedItem(BaseModel):
    id: str
    type: str
    source: str
    ts_ms: int
    data: dict[str, Any]


async def recent(
    redis: RedisDep, stream: str, limit: int, keep: Any = None, oldest_first: bool = False
) -> list[FeedItem]:
    """The newest ``limit`` decodable entries of ``stream`` that ``keep(payload dict)`` accepts."""
    items: list[FeedItem] = []
    scan = limit if keep is None else limit * SCAN_FACTOR
    for entry_id, fields in await redis.xrevrange(stream, count=scan) or []:
        try:
            event = decode(fields)
        except DecodeError:
            continue
        data = event.payload.model_dump(mode="json")
        if keep is not None and not keep(data):
            continue
        items.append(FeedItem(id=entry_id, type=event.type, source=event.source, ts_ms=event.ts_event_ms, data=data))
        if len(items) >= limit:
            break
    return items[::-1] if oldest_first else items


@router.get("/signals")
async def signals(
    redis: RedisDep, limit: int = Query(50, ge=1, le=500), symbol: str | None = Query(None, pattern=r"^[A-Z0-9]{5,20}$")
) -> list[FeedItem]:
    """Entry and exit signals, newest first."""
    keep = None if symbol is None else (lambda data: data.get("symbol") == symbol)
    return await recent(redis, streams.SIGNALS, limit, keep)


@router.get("/decisions")
async def decisions(
    redis: RedisDep, limit: int = Query(50, ge=1, le=500), symbol: str | None = Query(None, pattern=r"^[A-Z0-9]{5,20}$")
) -> list[FeedItem]:
    """Why the strategy did or did not signal on each recent closed candle, newest first."""
    keep = None if symbol is None else (lambda data: data.get("symbol") == symbol)
    return await recent(redis, streams.DECISIONS, limit, keep)


@router.get("/logs")
async def logs(
    redis: RedisDep,
    limit: int = Query(200, ge=1, le=2000),
    service: str | None = Query(None, max_length=40),
    level: str | None = Query(None, pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$"),
) -> list[FeedItem]:
    """Recent log lines of every service, oldest first; ``level`` keeps that level and above."""
    floor = LEVELS.index(level) if level else 0

    def keep(data: dict[str, Any]) -> bool:
        rank = LEVELS.index(data["level"]) if data.get("level") in LEVELS else len(LEVELS)
        return (service is None or data.get("service") == service) and rank >= floor

    return await recent(redis, streams.LOGS, limit, keep if service or level else None, oldest_first=True)
