"""Moving the open position's stop-loss on closed candles (trailing, by ATRs, break-even), as the
backtester does: each candle the position held through, once closed in market time, raises the
stop through ``shared.trading.stops.moved_stop``; a stop never goes down.

The move is idempotent: ``moved_stop`` raises the stop to at most f(close) of each candle, so
feeding a candle again, or the candles of an outage after a restart, gives the same level. Only
the stop is kept (in the ledger), not the highest close: the stop already holds what the
earlier closes did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.executor.core.state import PositionFacts
from shared.trading.ledger import candle_open_ms
from shared.trading.stops import StopRules, moved_stop
from shared.trading.vocabulary import PositionStatus


@dataclass(frozen=True)
class ClosedCandle:
    """What a closed candle gives the stop: when it opened and closed (market ms), its close, and
    its ATR (``shared.trading.stops.window_atr``; None when not needed or not known)."""

    open_time_ms: int
    close_time_ms: int
    close: Decimal
    atr: Decimal | None = None


def first_candle_ms(position: PositionFacts, interval_ms: int) -> int | None:
    """Open time of the first candle that can move the stop: the one after the entry's candle."""
    if position.entry_candle_open_ms is not None:
        return position.entry_candle_open_ms + interval_ms
    if position.entry_time_ms is not None:
        return candle_open_ms(position.entry_time_ms, interval_ms) + interval_ms
    return None


def movable(position: PositionFacts | None, rules: StopRules) -> bool:
    """Whether closed candles can move this position's stop now (open, levels set, no exit decided)."""
    return (
        rules.moves
        and position is not None
        and position.status == PositionStatus.OPEN
        and position.stop_loss is not None
        and position.entry_price is not None
        and not position.exit_reason
    )


def candles_due(applied_ms: int | None, market_ms: int, interval_ms: int) -> bool:
    """Whether a candle has closed (market time) since the last one applied (open time ``applied_ms``)."""
    last_closed = candle_open_ms(market_ms, interval_ms) - interval_ms
    return applied_ms is None or last_closed > applied_ms


def moved_level(
    position: PositionFacts,
    candles: Iterable[ClosedCandle],
    rules: StopRules,
    tick_size: Decimal,
    *,
    interval_ms: int,
    market_ms: int,
) -> tuple[Decimal | None, int | None]:
    """``(new stop or None when unmoved, open time of the newest candle applied)``.

    Only candles after the entry's candle and closed by ``market_ms`` count: an old tick read
    from a backlog sees the stop as it stood then, not as the candles after it moved it."""
    stop, entry = position.stop_loss, position.entry_price
    first = first_candle_ms(position, interval_ms)
    if stop is None or entry is None or first is None:
        return None, None
    moved, applied = stop, None
    for candle in sorted(candles, key=lambda c: c.open_time_ms):
        if candle.open_time_ms < first or candle.close_time_ms > market_ms:
            continue
        moved = moved_stop(moved, entry, candle.close, rules, tick_size, candle.atr)
        applied = candle.open_time_ms
    return (moved if moved > stop else None), applied
