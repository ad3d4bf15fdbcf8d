"""Server-sent events: the dashboard's live feed, resumable with ``Last-Event-ID``.

Event names: ``log``, ``price``, ``candle``, ``status``, ``signal``, ``decision``, ``orders``,
``alert``, ``command`` (an answer to an operator command), ``parameters``, and ``reset`` (too much
was missed: reload everything). Each
``data`` is JSON: the event's payload plus ``type``, ``source``, ``ts_ms`` and ``stream``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.api.deps import HubDep, Protected, SettingsDep
from services.api.hub import Subscription
from services.api.middleware import drop_callback
from services.api.relay import ID_PATTERN, Relayed, StreamCursor, sse_frame

router = APIRouter(prefix="/api", tags=["events"], dependencies=Protected)
HEADER_PATTERN = f"^$|{ID_PATTERN}"
KEEPALIVE = b": ping\n\n"
KEEPALIVE_S = 15.0  # an idle stream still shows proxies and the browser that it is alive
MAX_BATCH = 200
# One frame of the stream as OpenAPI 3.2 describes server-sent events.
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response of frames written as they are (see ``_stream``).

    The media type is given per response, not on the class: on the class, the OpenAPI document
    would also describe the body as one string, which a stream of frames is not.
    """


async def _subscription(request: Request, hub: HubDep) -> AsyncIterator[Subscription]:
    # Subscribed before the backlog is read, so nothing falls between the two.
    subscription = hub.subscribe(drop_callback(request.scope))
    try:
        yield subscription
    finally:
        hub.unsubscribe(subscription)


async def _resume_from(
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=140, json_schema_extra={"pattern": HEADER_PATTERN})
    ] = None,
    resume: Annotated[
        str | None, Query(alias="last_event_id", max_length=140, json_schema_extra={"pattern": ID_PATTERN})
    ] = None,
) -> StreamCursor | None:
    """Where to resume; a malformed id is a 400 (resuming from a guess could skip events)."""
    last_event_id = last_event_id or None  # an empty header names no event: a fresh start
    for text in (last_event_id, resume):
        if text is not None and not re.fullmatch(ID_PATTERN, text):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be <ms>-<seq> or <ms>-<seq>@<stream>")
    return StreamCursor.parse(last_event_id or resume)


class FeedPosition(BaseModel):
    """Where the live feed stands: load a snapshot after asking, then open ``/api/events`` with
    this id, and every event after the question arrives (some twice: the snapshot may hold it)."""

    last_event_id: str = Field(description="<ms>-<seq>@<stream> of the newest resumable entry; 0-0 when none")


@router.get("/events/position")
async def feed_position(hub: HubDep) -> FeedPosition:
    """The id to resume the live feed from after loading the page's snapshot."""
    cursor = await hub.position()
    return FeedPosition(last_event_id=cursor.entry_id if cursor.stream == "~" else cursor.text())


@router.get(
    "/events",
    response_class=EventStream,
    responses={
        200: {"description": "Successful Response", "content": {"text/event-stream": {"itemSchema": EVENT_SCHEMA}}},
        400: {"description": "malformed Last-Event-ID"},
    },
)
async def events(
    after: Annotated[StreamCursor | None, Depends(_resume_from)],
    subscription: Annotated[Subscription, Depends(_subscription)],
    hub: HubDep,
    settings: SettingsDep,
) -> EventStream:
    """Live events; send ``Last-Event-ID`` (or ``?last_event_id=``) to receive what was missed."""
    # No buffering on the way: not in a cache, not in a proxy (nginx reads X-Accel-Buffering).
    return EventStream(
        _stream(after, subscription, hub, settings.sse_retry_ms),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    after: StreamCursor | None, subscription: Subscription, hub: HubDep, retry_ms: int
) -> AsyncIterator[bytes]:
    # Frames are encoded once by the hub for every client; what is queued for this client when
    # it is ready to write goes out as one write, so a client that fell behind catches up in a
    # few system calls rather than one per event.
    yield f": connected\nretry: {retry_ms}\n\n".encode()
    if after is not None:
        missed, too_many = await hub.backlog(after)
        if too_many:
            yield sse_frame(Relayed("reset", {"reason": "too many events missed"}))
            after = None
        for item in missed:
            yield sse_frame(item)
            if item.cursor is not None:
                after = item.cursor
    queue = subscription.queue
    while not subscription.dropped:
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                items = [await queue.get()]
        except TimeoutError:
            yield KEEPALIVE
            continue
        while len(items) < MAX_BATCH and not queue.empty():
            items.append(queue.get_nowait())
        frames = [
            sse_frame(item)
            for item in items
            # already sent from the backlog
            if item.cursor is None or after is None or item.cursor > after
        ]
        if frames:
            yield b"".join(frames)
