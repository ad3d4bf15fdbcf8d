"""A clock that moves only when told to, or when something sleeps on it (component tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

START_WALL_MS = 1_750_000_020_000  # 2025-06-15 15:07:00 UTC, 20 s into a minute candle


class FakeClock:
    """Wall and monotonic time advanced together; ``sleep`` advances them at once (after
    yielding to the event loop) and runs the hooks given to ``on_sleep`` first."""

    def __init__(self, wall_ms: int = START_WALL_MS, monotonic_s: float = 1_000.0) -> None:
        self.wall_ms = wall_ms
        self.monotonic_s = monotonic_s
        self.slept: list[float] = []
        self._hooks: list[Callable[[float], Awaitable[None]]] = []

    def now_ms(self) -> int:
        return self.wall_ms

    def monotonic(self) -> float:
        return self.monotonic_s

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self.monotonic_s += seconds
        self.wall_ms += round(seconds * 1000)

    def on_sleep(self, hook: Callable[[float], Awaitable[None]]) -> None:
        """Run ``hook(seconds)`` at every later sleep, before time moves (e.g. a lease lost meanwhile)."""
        self._hooks.append(hook)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        for hook in list(self._hooks):
            await hook(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
