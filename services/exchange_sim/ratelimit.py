"""Fixed-window counters for request weight and order counts (aligned to the clock, as Binance)."""

from __future__ import annotations

import math

from . import errors

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000
ORDER_LIMIT_1D = 200_000
BAN_AFTER_429S = 3  # the fourth request over the weight limit in one window is banned
FIRST_BAN_S = 120  # Binance: bans scale from 2 minutes to 3 days for repeat offenders
MAX_BAN_S = 3 * 86_400


class FixedWindow:
    """Counts within windows that start at multiples of ``length_ms`` (epoch aligned)."""

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self.window_start = 0
        self.count = 0

    def _roll(self, now: int) -> None:
        start = now // self.length_ms * self.length_ms
        if start != self.window_start:
            self.window_start, self.count = start, 0

    def add(self, amount: int, now: int) -> int:
        """Add ``amount`` and return the count of the current window."""
        self._roll(now)
        self.count += amount
        return self.count

    def current(self, now: int) -> int:
        self._roll(now)
        return self.count

    def remove(self, amount: int, now: int) -> int:
        """Take ``amount`` off the current window's count (never below zero)."""
        self._roll(now)
        self.count = max(0, self.count - amount)
        return self.count

    def retry_after(self, now: int) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, math.ceil((self.window_start + self.length_ms - now) / 1000))


class RateLimiter:
    """REQUEST_WEIGHT per minute and ORDERS per 10 s and per day."""

    def __init__(self, weight_limit: int, order_limit_10s: int) -> None:
        self.weight_limit = weight_limit
        self.order_limit_10s = order_limit_10s
        self.weight = FixedWindow(MINUTE_MS)
        self.orders_10s = FixedWindow(TEN_SECONDS_MS)
        self.orders_1d = FixedWindow(DAY_MS)
        self.lift_ban()

    def lift_ban(self) -> None:
        """Forget bans and 429s (the admin fault reset)."""
        self.banned_until = 0
        self.bans = 0
        self.refusals = FixedWindow(MINUTE_MS)

    def ban_seconds_left(self, now: int) -> int:
        """Whole seconds until the IP ban ends, 0 when not banned."""
        return max(0, math.ceil((self.banned_until - now) / 1000))

    def refuse(self, now: int) -> bool:
        """Count a 429 for request weight; True when this one starts an IP ban instead.

        A client that keeps sending after ``BAN_AFTER_429S`` answers of 429 in one weight window is
        banned, twice as long as the previous ban each time, from 2 minutes up to 3 days.
        """
        if self.refusals.add(1, now) <= BAN_AFTER_429S:
            return False
        self.banned_until = now + min(MAX_BAN_S, FIRST_BAN_S * 2**self.bans) * 1000
        self.bans += 1
        return True

    def charge(self, weight: int, now: int) -> None:
        """Add a request's weight: 418 while banned, 429 over the limit, 418 for a client that
        keeps going after 429s."""
        left = self.ban_seconds_left(now)
        if left:
            raise errors.ip_banned(self.banned_until, left)
        if self.weight.add(weight, now) <= self.weight_limit:
            return
        if self.refuse(now):
            raise errors.ip_banned(self.banned_until, self.ban_seconds_left(now))
        raise errors.too_much_weight(self.weight_limit, self.weight.retry_after(now))

    def rate_limits(self) -> list[dict[str, object]]:
        """The ``rateLimits`` array of exchangeInfo."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.order_limit_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": ORDER_LIMIT_1D},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300_000},
        ]

    def weight_status(self, now: int) -> list[dict[str, object]]:
        """The WebSocket API ``rateLimits`` array (weight with its current count)."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.weight_limit,
                "count": self.weight.current(now),
            }
        ]

    def orders_full(self, now: int) -> bool:
        return self.orders_10s.current(now) >= self.order_limit_10s or self.orders_1d.current(now) >= ORDER_LIMIT_1D

    def order_retry_after(self, now: int) -> int:
        if self.orders_1d.current(now) >= ORDER_LIMIT_1D:
            return self.orders_1d.retry_after(now)
        return self.orders_10s.retry_after(now)

    def orders_traded(self, count: int, now: int) -> None:
        """``count`` orders traded for the first time: Binance's unfilled order count goes down by
        one for each, in every ORDERS interval (an order that trades does not count against the
        limit; the maker bonus of more than one is not modelled)."""
        self.orders_10s.remove(count, now)
        self.orders_1d.remove(count, now)

    def record_order(self, now: int, count: int = 1) -> tuple[int, int]:
        """Count accepted orders (an OCO is 2); returns the (10 s, 1 day) counts for the headers."""
        return self.orders_10s.add(count, now), self.orders_1d.add(count, now)
