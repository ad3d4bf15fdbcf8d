"""Small asyncio helpers shared by the services' loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def quietly(awaitable: Awaitable[Any], timeout_s: float | None = None) -> None:
    """Await a best-effort clean-up step, ignoring its failure and bounding its time."""
    try:
        await asyncio.wait_for(awaitable, timeout_s)
    except Exception:  # noqa: BLE001 - clean-up on the way out must not raise
        pass
