"""A consumer group's real backlog: entries after its last-delivered id, and its pending age.

Redis 7's ``lag`` of XINFO GROUPS is derived from counters that MAXLEN trimming invalidates (a
group that has read everything can show a thousand "behind"), so the backlog is counted here
from what the stream holds: zero when the group's last-delivered id is the stream's newest id,
otherwise the entries after it (counted up to ``cap``). The age of the oldest pending entry
(delivered, not acknowledged) comes from its id against Redis' own clock.

The entries behind are counted inside Redis (one script returns the counts only): fetching them
to count them moved every field of up to ``cap`` entries per stream through the client, seconds
of parsing on the caller's event loop when 500 symbols' ticker groups were behind, long enough
for the executor's lease renewal to miss its TTL. A caller whose user may not run scripts counts
with ``XRANGE`` as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

COUNT_CAP = 10_000
COUNT_CHUNK = 50  # streams counted per script call: Redis serves other clients between two calls
# The entries after each (ARGV[2k], exclusive ARGV[2k+1]) up to ARGV[1]: the counts only. The
# streams are arguments, not keys (a service's ACL checks each XRANGE the script runs).
_COUNT_AFTER = """
local counts = {}
for index = 2, #ARGV, 2 do
  counts[#counts + 1] = #redis.call('xrange', ARGV[index], '(' .. ARGV[index + 1], '+', 'COUNT', ARGV[1])
end
return counts
"""


@dataclass(frozen=True, slots=True)
class Backlog:
    """One group on one stream; ``entries`` is at least ``cap`` when ``capped``."""

    stream: str
    group: str
    entries: int
    pending: int
    consumers: int
    oldest_pending_age_ms: int | None
    capped: bool = False
    behind_ms: int = 0  # Redis time from the last-delivered entry to the stream's newest one


def id_key(entry_id: str | bytes) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``, ordered as Redis orders ids."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _group(groups: Any, name: str) -> dict[str, Any] | None:
    if isinstance(groups, Exception):  # the stream does not exist (yet)
        return None
    for info in groups:
        if _text(info.get("name")) == name:
            return dict(info)
    return None


async def backlogs(redis: Redis, pairs: Sequence[tuple[str, str]], cap: int = COUNT_CAP) -> list[Backlog]:
    """The backlog of every (stream, group) that exists, in two round trips (a third when the
    entries behind had to be counted here)."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream, _ in pairs:
            pipe.xinfo_groups(stream)
            pipe.xrevrange(stream, count=1)
        pipe.time()
        replies = await pipe.execute(raise_on_error=False)
    seconds, micros = replies[-1]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    found: list[tuple[str, str, dict[str, Any], bool, int]] = []
    for index, (stream, group) in enumerate(pairs):
        info = _group(replies[2 * index], group)
        if info is None:
            continue
        newest = replies[2 * index + 1]
        delivered = _text(info.get("last-delivered-id", "0-0"))
        behind = bool(newest) and not isinstance(newest, Exception) and id_key(newest[0][0]) > id_key(delivered)
        behind_ms = max(0, id_key(newest[0][0])[0] - id_key(delivered)[0]) if behind else 0
        found.append((stream, group, info, behind, behind_ms))
    late_ones = [(stream, _text(info.get("last-delivered-id", "0-0"))) for stream, _, info, late, _ in found if late]
    chunks = [late_ones[start : start + COUNT_CHUNK] for start in range(0, len(late_ones), COUNT_CHUNK)]
    async with redis.pipeline(transaction=False) as pipe:
        for chunk in chunks:
            pipe.eval(_COUNT_AFTER, 0, cap, *(part for pair in chunk for part in pair))
        for stream, group, info, _, _ in found:
            if int(info.get("pending", 0)):
                pipe.xpending(stream, group)
        extra = iter(await pipe.execute(raise_on_error=False) if len(pipe) else [])
    counted: list[int] = []
    for chunk in chunks:
        counted += await _counts(redis, next(extra), chunk, cap)
    counts = iter(counted)
    result = []
    for stream, group, info, late, behind_ms in found:
        entries = next(counts) if late else 0
        pending = int(info.get("pending", 0))
        age = None
        if pending:
            summary = next(extra)
            oldest = summary.get("min") if isinstance(summary, dict) else None
            age = None if oldest is None else max(0, now_ms - id_key(oldest)[0])
        consumers = int(info.get("consumers", 0))
        result.append(Backlog(stream, group, entries, pending, consumers, age, entries >= cap, behind_ms))
    return result


async def _counts(redis: Redis, reply: Any, chunk: Sequence[tuple[str, str]], cap: int) -> list[int]:
    """The script's counts for ``chunk``; counted with ``XRANGE`` here when it could not run (a
    user without the right to run scripts)."""
    if isinstance(reply, list):
        return [int(count) for count in reply]
    async with redis.pipeline(transaction=False) as pipe:
        for stream, entry_id in chunk:
            pipe.xrange(stream, min="(" + entry_id, count=cap)
        replies = await pipe.execute(raise_on_error=False)
    return [len(rows) if isinstance(rows, list) else 0 for rows in replies]
