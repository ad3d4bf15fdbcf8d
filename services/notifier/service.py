"""The notifier: a consumer of ``executor:events`` that tells the owner what matters, through Apprise.

It is its own process and consumer group (``notifier``, created at the stream's end on the
first start, so history is not replayed): the executor only appends to the stream and never
waits for it, so a slow or absent receiver delays nothing in trading. Each event is
acknowledged once every target took its notification (at least once, retried with backoff;
``services.notifier.delivery`` keeps a redelivery from sending twice). It runs once per
deployment: its consumer name is fixed, so after a restart it first reads what it had not
finished.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from services.notifier.config import NotifierSettings
from services.notifier.delivery import Deliverer, make_targets
from services.notifier.messages import NotifyKind, classify
from services.notifier.summary import DailySummary
from shared import streams
from shared.bus import Consumer, NotMine
from shared.events import Envelope
from shared.store.database import open_engine

logger = logging.getLogger(__name__)
CONSUMER = "notifier"


async def run(settings: NotifierSettings, redis: Redis, stop: asyncio.Event, instance: str) -> None:
    urls = settings.urls
    if not urls:
        logger.warning("NOTIFY_URLS is empty: no notification will be sent")
        await stop.wait()
        return
    # Apprise says "Notifying 1 service(s)" for every message; its warnings are enough here.
    logging.getLogger("apprise").setLevel(logging.WARNING)
    targets = make_targets(urls)
    deliverer = Deliverer(redis, targets, timeout_s=settings.notify_timeout_s, retry_max_s=settings.notify_retry_max_s)
    kinds = settings.kinds

    async def handle(stream: str, event: Envelope) -> None:
        note = classify(event, settings.notify_alert_level)
        if note is None or note.kind not in kinds:
            return
        if not await deliverer.deliver(note, stop):
            # Stopping before every target took it: the entry stays pending (not a failure) and
            # is delivered first thing at the next start.
            raise NotMine("stopping; delivered at the next start")

    consumer = Consumer(
        redis,
        group=streams.GROUP_NOTIFIER,
        name=CONSUMER,
        handler=handle,
        streams_to_read=[streams.EXECUTOR_EVENTS],
        start_id="$",
    )
    logger.info(
        "notifying %s to %d target(s): %s",
        ",".join(sorted(kinds)),
        len(targets),
        ", ".join(target.label for target in targets),
    )
    engine = open_engine(settings.database_url)
    tasks = [asyncio.create_task(consumer.run(stop), name="notify-events")]
    if NotifyKind.DAILY_SUMMARY in kinds:
        summary = DailySummary(redis, engine, settings.symbols, settings.summary_minute, deliverer.deliver)
        tasks.append(asyncio.create_task(summary.run(stop), name="daily-summary"))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()
