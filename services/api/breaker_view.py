"""The account circuit breaker as the status shows it (the executor's record, read from Redis)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.codec import loads
from shared.trading.breaker import BreakerLimits, advance, state_from
from shared.trading.vocabulary import BreakerLimit


class BreakerView(BaseModel):
    """The account circuit breaker: the limit tripped (None: entries allowed) and its figures."""

    tripped: str | None = None
    tripped_at_ms: int | None = None  # market time
    figures: dict[str, str] = {}
    clears: str = ""  # when it clears by itself
    equity: str | None = None
    losing_streak: int = 0
    last_reset: dict[str, Any] | None = None


def breaker_view(raw: str | None, market_ms: int | None) -> BreakerView | None:
    """The breaker's record as the executor wrote it, a daily trip shown cleared once the market
    clock is in the next UTC day (the executor clears it at its next entry decision)."""
    record = loads(raw)
    if not isinstance(record, dict):
        return None
    state = state_from(record.get("state"))
    if market_ms is not None:
        state = advance(state, BreakerLimits(), market_ms).state
    trip = state.tripped
    clears = ""
    if trip is not None:
        clears = (
            "at the next UTC day of market time" if trip.limit == BreakerLimit.DAILY_LOSS else "by an operator reset"
        )
    return BreakerView(
        tripped=None if trip is None else str(trip.limit),
        tripped_at_ms=None if trip is None else trip.at_ms,
        figures=dict(trip.figures) if trip else {},
        clears=clears,
        equity=None if state.equity is None else format(state.equity, "f"),
        losing_streak=state.losing_streak,
        last_reset=record.get("last_reset"),
    )
