"""Sending one notification to every target at least once, retried with backoff until it arrives.

Each target (one ``NOTIFY_URLS`` entry, its own Apprise instance) that took a notification is
marked under the notification's key (``notifier:sent:<key>``, a hash of target ids, 7 days):
a redelivered event, a restart or a retry after a partial failure sends only to the targets
still missing it. Only the notifier waits for a slow or absent receiver; trading never does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass

import apprise
from redis.asyncio import Redis

from services.notifier import metrics
from services.notifier.messages import Notification
from shared import streams
from shared.aio import sleep_or_stop
from shared.events import now_ms
from shared.logs import add_secret

logger = logging.getLogger(__name__)
SENT_TTL_S = 7 * 24 * 3600
_PIECES = re.compile(r"[/:@?&=#,;]+")
_HOSTNAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+|\d+(\.\d+){3}|localhost", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    id: str  # a fingerprint of the URL, never the URL
    label: str  # Apprise's privacy form of the URL: secrets masked
    apprise: apprise.Apprise


def protect(url: str) -> None:
    """Mask ``url`` and its credential-looking parts (tokens, passwords, webhook ids) in every log line.

    Apprise puts tokens anywhere in a URL (``tgram://<bot token>/<chat>``), so every piece
    long enough to be one is masked, except plain host names and addresses.
    """
    add_secret(url)
    for piece in _PIECES.split(url.split("://", 1)[-1]):
        if len(piece) >= 8 and not _HOSTNAME.fullmatch(piece):
            add_secret(piece)


def make_targets(urls: list[str]) -> list[Target]:
    targets = []
    for url in urls:
        protect(url)
        instance = apprise.Apprise()
        if not instance.add(url):
            raise ValueError("NOTIFY_URLS: an entry is not a notification URL Apprise can use")
        label = instance[0].url(privacy=True)
        targets.append(Target(hashlib.sha256(url.encode()).hexdigest()[:16], label, instance))
    return targets


class Deliverer:
    """Delivers notifications to every target, each at least once."""

    def __init__(self, redis: Redis, targets: list[Target], *, timeout_s: float, retry_max_s: float) -> None:
        self.redis = redis
        self.targets = targets
        self.timeout_s = timeout_s
        self.retry_max_s = retry_max_s

    async def deliver(self, note: Notification, stop: asyncio.Event) -> bool:
        """Send ``note`` to every target that has not taken it yet, retrying the others with a
        doubling pause (up to ``NOTIFY_RETRY_MAX_S``) until all took it (True) or ``stop`` is set (False)."""
        marker = streams.notifier_sent_key(note.key)
        done = set(await self.redis.hgetall(marker))
        delay = min(1.0, self.retry_max_s)
        attempt = 0
        while True:
            missing = [target for target in self.targets if target.id not in done]
            if not missing:
                return True
            attempt += 1
            for target in missing:
                if await self._send(target, note):
                    async with self.redis.pipeline(transaction=True) as pipe:
                        pipe.hset(marker, target.id, now_ms())
                        pipe.expire(marker, SENT_TTL_S)
                        await pipe.execute()
                    done.add(target.id)
                    logger.info("notified kind=%s key=%s target=%s", note.kind.value, note.key, target.label)
            if all(target.id in done for target in self.targets):
                return True
            if stop.is_set():
                return False
            logger.warning(
                "notification kind=%s key=%s not delivered to %d target(s) (attempt %d); retrying in %.1f s",
                note.kind.value,
                note.key,
                len(self.targets) - len(done),
                attempt,
                delay,
            )
            await sleep_or_stop(stop, delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _send(self, target: Target, note: Notification) -> bool:
        try:
            result = await target.apprise.async_notify(
                body=note.body,
                title=note.title,
                notify_type=apprise.NotifyType(note.severity.value),
                timeout=self.timeout_s,
            )
        except Exception as e:  # noqa: BLE001 - a plugin's failure is a failed delivery, retried
            logger.warning("notification to %s failed: %s", target.label, type(e).__name__)
            metrics.DELIVERIES.labels(note.kind, "failed").inc()
            return False
        metrics.DELIVERIES.labels(note.kind, "sent" if result else "failed").inc()
        return bool(result)
