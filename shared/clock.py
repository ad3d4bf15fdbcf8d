"""The one seam through which the services read time.

Domain code never reads a clock; a service's shell is handed a ``Clock`` (the system's by
default, a fake one in component tests) and passes the instants it needs to the pure core.
``now_ms`` is the wall clock (epoch ms: ledger stamps, ages of I/O such as feed silence and an
order request's grace); ``monotonic`` is for throttles, retries and pauses; ``sleep`` waits on
the same clock, so a fake clock can move time forward instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time, monotonic time and a pause, from one source."""

    def now_ms(self) -> int:
        """Wall clock in epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
