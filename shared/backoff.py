"""Reconnect delays: doubling up to a cap, reset once a connection has proved itself."""

from __future__ import annotations

import random


class Backoff:
    """``next_delay()`` after each failure; ``reset()`` after a good connection."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (full jitter within the doubled window)."""
        window = min(self.cap_s, self.base_s * 2.0**self.attempt)
        self.attempt += 1
        return window / 2 + self._rng.random() * window / 2

    def reset(self) -> None:
        self.attempt = 0
