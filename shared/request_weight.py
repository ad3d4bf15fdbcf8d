"""A service's share of the exchange's request weight (``REQUEST_WEIGHT`` per minute).

Binance counts request weight per IP in windows aligned to the minute and answers 429, then
418 (an IP ban), once a window's total passes the limit (6,000). Every service of the bot
shares that IP, so each one keeps its own spending under a share of the limit (market_data and
the executor half each by default) and also never sends a request that would take the IP's
total, as the last answer's ``X-MBX-USED-WEIGHT-1M`` reported it, past the whole limit. A
request that does not fit waits, in order of arrival, for the next window: it is queued, not
sent. Callers wait in their own task, so a wait here never holds up the handling of ticks.

Urgent reads (``urgent=True``: the candles a strategy needs to start, a gap back-fill) go before
every routine read still waiting (a catch-up of the trades of 500 symbols spends 10,000 weight,
four windows): a routine read is sent only while no urgent one waits, and only within the share
less ``reserve``, which is kept for urgent reads arriving later in the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000
EXCHANGE_LIMIT = 6000
# The two windows' clocks differ by a little; a request sent in the very first milliseconds of
# a window could still be counted in the previous one.
WINDOW_MARGIN_MS = 250
HEADER = "X-MBX-USED-WEIGHT-1M"
# The executor's calls by name and their weight (Binance spot REST; myTrades counted at 20, the
# price without orderId); an account or all-symbol open-orders read this recent is shared by one
# reconciliation round.
ENDPOINT_WEIGHTS = {
    "exchangeInfo": 20,
    "account": 20,
    "query order": 4,
    "myTrades": 20,
    "openOrders": 6,
    "bookTicker": 2,
    "openOrders all": 80,
}
RECENT_ACCOUNT_S = 5.0


def wall_ms() -> int:
    return int(time.time() * 1000)


class WeightBudget:
    """Spends at most ``share`` weight per minute window and keeps the IP's total under ``limit``."""

    def __init__(
        self,
        share: int,
        *,
        limit: int = EXCHANGE_LIMIT,
        reserve: int = 0,
        clock: Callable[[], int] = wall_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < share <= limit:
            raise ValueError(f"request weight share must be in 1..{limit}, got {share}")
        if not 0 <= reserve < share:
            raise ValueError(f"request weight reserve must be in 0..{share - 1}, got {reserve}")
        self.share = share
        self.limit = limit
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._window = -1
        self._spent = 0  # by this service in the current window
        self._ip_used = 0  # the IP's total in the current window, as last reported
        self._lock = asyncio.Lock()  # routine reads, in order of arrival
        self._urgent_lock = asyncio.Lock()  # urgent reads, in order of arrival
        self._urgent_waiting = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()
        self.waits = 0

    @property
    def spent(self) -> int:
        self._roll()
        return self._spent

    def _roll(self) -> None:
        window = self._clock() // WINDOW_MS
        if window != self._window:
            self._window, self._spent, self._ip_used = window, 0, 0

    def _fits(self, weight: int, urgent: bool = True) -> bool:
        self._roll()
        share = self.share if urgent else self.share - self.reserve
        return self._spent + weight <= share and self._ip_used + weight <= self.limit

    async def spend(self, weight: int, *, urgent: bool = False) -> None:
        """Wait until ``weight`` fits in the current window (and, for a routine read, until no
        urgent read waits), then count it as spent."""
        if urgent:
            self._urgent_waiting += 1
            self._no_urgent.clear()
            try:
                async with self._urgent_lock:
                    await self._wait_for_room(weight, urgent=True)
                    self._count(weight)
            finally:
                self._urgent_waiting -= 1
                if not self._urgent_waiting:
                    self._no_urgent.set()
            return
        async with self._lock:
            while True:
                await self._no_urgent.wait()
                await self._wait_for_room(weight, urgent=False)
                if not self._urgent_waiting:  # an urgent read that came during the wait goes first
                    self._count(weight)
                    return

    async def _wait_for_room(self, weight: int, *, urgent: bool) -> None:
        while not self._fits(weight, urgent):
            now = self._clock()
            wait_ms = WINDOW_MS - now % WINDOW_MS + WINDOW_MARGIN_MS
            self.waits += 1
            logger.info(
                "request weight %d/%d spent this minute: next request in %.1fs",
                self._spent,
                self.share,
                wait_ms / 1000,
            )
            await self._sleep(wait_ms / 1000)

    def _count(self, weight: int) -> None:
        self._spent += weight
        self._ip_used += weight

    async def room(self, weight: int) -> None:
        """Wait until a routine read of ``weight`` would be sent at once (nothing is spent): a
        caller that must not wait while holding something (a symbol's lock) waits here first."""
        async with self._lock:
            await self._no_urgent.wait()
            await self._wait_for_room(weight, urgent=False)

    async def take(self, weight: int, *, wait: bool = True) -> None:
        """``spend`` (waiting for room), or with ``wait=False`` ``charge``."""
        if wait:
            await self.spend(weight)
        else:
            self.charge(weight)

    def charge(self, weight: int) -> None:
        """Count ``weight`` without waiting (an order: 1 weight, never held back by reads)."""
        self._roll()
        self._spent += weight
        self._ip_used += weight

    def observe(self, headers: Mapping[str, Any] | None) -> None:
        """Take the IP's total weight of this window from an answer's headers."""
        if not headers:
            return
        value = headers.get(HEADER)
        if value is None:
            return
        try:
            used = int(value)
        except (TypeError, ValueError):
            return
        self._roll()
        self._ip_used = max(self._ip_used, used)

    def observe_response(self, response: Any) -> None:
        """``observe`` the headers of an aiohttp response (python-binance's ``client.response``)."""
        self.observe(getattr(response, "headers", None))
