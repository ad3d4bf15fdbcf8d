"""Whether the consumer groups of a stream have read and acknowledged everything in it."""

from __future__ import annotations

from typing import Any

from shared.backlog import id_key


def groups_drained(client: Any, stream: str) -> bool:
    """Every group of ``stream`` (a synchronous redis client) has been handed the stream's newest
    entry and acknowledged all it was handed. Redis' ``lag`` is unknown (null) after a trim, so
    the group's last-delivered id is compared with the newest id instead; a missing stream is
    drained."""
    if not client.exists(stream):
        return True
    newest = client.xrevrange(stream, count=1)
    last = id_key(newest[0][0]) if newest else (0, 0)
    return all(
        int(group["pending"]) == 0 and id_key(group["last-delivered-id"]) >= last
        for group in client.xinfo_groups(stream)
    )
