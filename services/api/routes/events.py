"""Server-sent events: the dashboard's live feed, resumable with ``Last-Event-ID``.

Event names: ``log``, ``price``, ``candle``, ``status``, ``signal``, ``decision``, ``orders``,
``alert``, ``command`` (an answer to an operator command), ``parameters``, and ``reset`` (too much
was missed: reload everything). Each
``data`` is JSON: the event's payload plus ``type``, ``source``, ``ts_ms`` and ``stream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.api.deps import HubDep, Protected, SettingsDep
from services.api.hub import Subscription
from services.api.middleware import drop_callback
from services.api.relay import Position, Relayed, encoded_data

router = APIRouter(prefix="/api", tags=["events"], dependencies=Protected)


async def _subscription(request: Request, hub: HubDep) -> AsyncIterator[Subscription]:
    # Subscribed before the backlog is read, so nothing falls between the two.
    subscription = hub.subscribe(drop_callback(request.scope))
    try:
        yield subscription
    finally:
        hub.unsubscribe(subscription)


def _sse(item: Relayed) -> ServerSentEvent:
    return ServerSentEvent(event=item.event, raw_data=encoded_data(item), id=item.position.text() if item.position else None)


@router.get("/events", response_class=EventSourceResponse)
async def events(
    subscription: Annotated[Subscription, Depends(_subscription)],
    hub: HubDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    resume: Annotated[str | None, Query(alias="last_event_id", max_length=140)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Live events; send ``Last-Event-ID`` (or ``?last_event_id=``) to receive what was missed."""
    after = Position.parse(last_event_id or resume)
    yield ServerSentEvent(comment="connected", retry=settings.sse_retry_ms)
    if after is not None:
        missed, too_many = await hub.backlog(after)
        if too_many:
            yield ServerSentEvent(event="reset", data={"reason": "too many events missed"})
            after = None
        for item in missed:
            yield _sse(item)
            if item.position is not None:
                after = item.position
    while not subscription.dropped:
        item = await subscription.queue.get()
        if item.position is not None and after is not None and item.position <= after:
            continue  # already sent from the backlog
        yield _sse(item)
