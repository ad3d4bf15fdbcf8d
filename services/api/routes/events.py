"""Server-sent events: the dashboard's live feed, resumable with ``Last-Event-ID``.

Event names: ``log``, ``price``, ``candle``, ``status``, ``signal``, ``decision``, ``orders``,
``alert``, ``command`` (an answer to an operator command), ``parameters``, and ``reset`` (too much
was missed: reload everything). Each
``data`` is JSON: the event's payload plus ``type``, ``source``, ``ts_ms`` and ``stream``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.api.deps import HubDep, Protected, SettingsDep
from services.api.hub import Subscription
from services.api.middleware import drop_callback
from services.api.relay import ID_PATTERN, Relayed, StreamCursor, encoded_data

router = APIRouter(prefix="/api", tags=["events"], dependencies=Protected)
HEADER_PATTERN = f"^$|{ID_PATTERN}"


async def _subscription(request: Request, hub: HubDep) -> AsyncIterator[Subscription]:
    # Subscribed before the backlog is read, so nothing falls between the two.
    subscription = hub.subscribe(drop_callback(request.scope))
    try:
        yield subscription
    finally:
        hub.unsubscribe(subscription)


def _sse(item: Relayed) -> ServerSentEvent:
    return ServerSentEvent(event=item.event, raw_data=encoded_data(item), id=item.cursor.text() if item.cursor else None)


def _resume_from(
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=140, json_schema_extra={"pattern": HEADER_PATTERN})] = None,
    resume: Annotated[str | None, Query(alias="last_event_id", max_length=140, json_schema_extra={"pattern": ID_PATTERN})] = None,
) -> StreamCursor | None:
    """Where to resume; a malformed id is a 400 (resuming from a guess could skip events)."""
    last_event_id = last_event_id or None  # an empty header names no event: a fresh start
    for text in (last_event_id, resume):
        if text is not None and not re.fullmatch(ID_PATTERN, text):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be <ms>-<seq> or <ms>-<seq>@<stream>")
    return StreamCursor.parse(last_event_id or resume)


@router.get("/events", response_class=EventSourceResponse, responses={400: {"description": "malformed Last-Event-ID"}})
async def events(
    after: Annotated[StreamCursor | None, Depends(_resume_from)],
    subscription: Annotated[Subscription, Depends(_subscription)],
    hub: HubDep,
    settings: SettingsDep,
) -> AsyncIterator[ServerSentEvent]:
    """Live events; send ``Last-Event-ID`` (or ``?last_event_id=``) to receive what was missed."""
    yield ServerSentEvent(comment="connected", retry=settings.sse_retry_ms)
    if after is not None:
        missed, too_many = await hub.backlog(after)
        if too_many:
            yield ServerSentEvent(event="reset", data={"reason": "too many events missed"})
            after = None
        for item in missed:
            yield _sse(item)
            if item.cursor is not None:
                after = item.cursor
    while not subscription.dropped:
        item = await subscription.queue.get()
        if item.cursor is not None and after is not None and item.cursor <= after:
            continue  # already sent from the backlog
        yield _sse(item)
