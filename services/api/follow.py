"""Following streams by entry id: what a reader of the relay has not seen yet.

The api keeps state from the entries its event relay delivers (``LiveState``, ``CandleStore``);
before answering, a route reads each followed stream's newest id and takes the few entries the
relay has not delivered yet, so an answer never lags behind the bus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis


def entry_position(entry_id: str) -> tuple[int, int]:
    """``<ms>-<seq>`` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def catch_up(
    redis: Redis,
    cursors: Mapping[str, tuple[int, int]],
    newest: Mapping[str, Sequence[Any]],
    take: Callable[[str, str, dict[str, str]], None],
    limit: int,
) -> None:
    """Hand ``take`` every entry after ``cursors[stream]`` of each stream whose newest entry
    (``newest[stream]``: an ``XREVRANGE ... COUNT 1`` reply) is beyond it, oldest first."""
    behind = [
        stream
        for stream, reply in newest.items()
        if reply and entry_position(reply[0][0]) > cursors.get(stream, (0, -1))
    ]
    if not behind:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for stream in behind:
            cursor = cursors.get(stream)
            pipe.xrange(stream, min=f"({cursor[0]}-{cursor[1]}" if cursor else "-", count=limit)
        replies = await pipe.execute()
    for stream, entries in zip(behind, replies, strict=True):
        for entry_id, fields in entries:
            take(stream, entry_id, fields)
