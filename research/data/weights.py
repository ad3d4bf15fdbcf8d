"""Keeping REST requests inside Binance's request-weight budget.

Binance counts REQUEST_WEIGHT per IP in fixed one-minute windows aligned to its clock and reports
the window's total in every answer (``X-MBX-USED-WEIGHT-1M``), including what other programs on
the same IP used (a running bot, say). The gate lets a request go only while the weight already
used, plus that of the requests in flight, plus its own stays within the budget (a share of the
exchange's limit); otherwise it waits for the next window. A 429 or 418 answer's ``Retry-After``
holds every request back until it has passed.

Wall time here only paces I/O; nothing about the candles depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("research.data")
WINDOW_S = 60.0
# Past the window's end before sending again: the two clocks agree only to the offset measured.
MARGIN_S = 0.25


class WeightGate:
    """Admits requests by weight within ``budget`` per one-minute window of the server's clock."""

    def __init__(
        self,
        budget: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.budget = budget
        self.offset_s = 0.0  # server clock minus ours
        self.used = 0
        self.in_flight = 0
        self.paused_until = 0.0
        self.waits = 0
        self._clock = clock
        self._sleep = sleep
        self._window = -1

    def now(self) -> float:
        """The server's time as far as we know it, in seconds."""
        return self._clock() + self.offset_s

    def sync(self, server_s: float) -> None:
        """Align the windows to the server's clock, read just now."""
        self.offset_s = server_s - self._clock()

    async def acquire(self, weight: int) -> None:
        """Wait until a request of ``weight`` fits, then count it as in flight."""
        if weight > self.budget:
            raise ValueError(f"a request of weight {weight} never fits a budget of {self.budget}")
        while True:
            now = self.now()
            if now < self.paused_until:
                await self._wait(self.paused_until - now, "Retry-After")
                continue
            self._roll(now)
            if self.used + self.in_flight + weight <= self.budget:
                self.in_flight += weight
                return
            await self._wait(
                (self._window + 1) * WINDOW_S - now + MARGIN_S,
                f"weight {self.used + self.in_flight}/{self.budget} used this minute",
            )

    def release(self, weight: int, used_header: str | None) -> None:
        """A request of ``weight`` was answered (or failed); ``used_header`` is its weight header."""
        self.in_flight -= weight
        if used_header is None:
            return
        try:
            used = int(used_header)
        except ValueError:
            return
        self._roll(self.now())
        # Answers of one window can arrive out of order: the highest count is the latest.
        self.used = max(self.used, used)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a Retry-After)."""
        self.paused_until = max(self.paused_until, self.now() + seconds)

    def _roll(self, now: float) -> None:
        window = int(now // WINDOW_S)
        if window != self._window:
            self._window, self.used = window, 0

    async def _wait(self, seconds: float, reason: str) -> None:
        self.waits += 1
        log.info("waiting %.1f s (%s)", seconds, reason)
        await self._sleep(seconds)
