"""Injected faults, armed through the admin endpoints and consumed by REST and WebSocket code."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

REST_PREFIX = "/api/"


@dataclass
class Failure:
    """Answer the next ``remaining`` matching requests with HTTP ``status`` (5xx).

    With ``execute`` the request is processed first (an order IS placed) and only the answer is
    replaced, which is the "execution status unknown" case Binance warns about.
    """

    remaining: int
    path_prefix: str = REST_PREFIX
    status: int = 500
    execute: bool = False


@dataclass
class Throttle:
    """Answer the next ``remaining`` matching requests with 429 or 418 and ``Retry-After``."""

    remaining: int
    path_prefix: str = REST_PREFIX
    status: int = 429
    retry_after: int = 10


@dataclass
class Delay:
    """Hold the next ``remaining`` matching requests ``ms`` before (or, with ``after``, after) processing."""

    remaining: int
    ms: int
    path_prefix: str = REST_PREFIX
    after: bool = False


class Faults:
    """The armed faults; every counted fault disarms itself when its count reaches zero."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Clear every fault."""
        self.failure: Failure | None = None
        self.throttle: Throttle | None = None
        self.delay: Delay | None = None
        self.timestamp_errors = 0
        self.clock_offset_ms = 0
        self.stall_until: float | None = None

    def take_failure(self, path: str) -> Failure | None:
        return self._take("failure", path)

    def take_throttle(self, path: str) -> Throttle | None:
        return self._take("throttle", path)

    def take_delay(self, path: str) -> Delay | None:
        return self._take("delay", path)

    def _take(self, name: str, path: str) -> Any:  # the fault named, typed by each take_* method
        fault = getattr(self, name)
        if fault is None or not path.startswith(fault.path_prefix):
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            setattr(self, name, None)
        return fault

    def take_timestamp_error(self) -> bool:
        """True (and one fewer left) if the next signed request must get -1021."""
        if self.timestamp_errors <= 0:
            return False
        self.timestamp_errors -= 1
        return True

    def stall(self, seconds: float | None) -> None:
        """Silence market streams for ``seconds`` (None: until reset; 0: end the stall)."""
        if seconds is None:
            self.stall_until = math.inf
        elif seconds <= 0:
            self.stall_until = None
        else:
            self.stall_until = time.monotonic() + seconds

    def stalled(self) -> bool:
        if self.stall_until is None:
            return False
        if time.monotonic() >= self.stall_until:
            self.stall_until = None
            return False
        return True

    def describe(self) -> dict[str, object]:
        """The armed faults as JSON."""
        stall = None
        if self.stalled():
            assert self.stall_until is not None
            stall = None if math.isinf(self.stall_until) else round(self.stall_until - time.monotonic(), 3)
        return {
            "fail": asdict(self.failure) if self.failure else None,
            "throttle": asdict(self.throttle) if self.throttle else None,
            "delay": asdict(self.delay) if self.delay else None,
            "timestamp_errors": self.timestamp_errors,
            "clock_offset_ms": self.clock_offset_ms,
            "stalled": self.stalled(),
            "stall_seconds_left": stall,
        }
