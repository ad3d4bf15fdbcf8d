"""LIMIT_MAKER entries (``ENTRY_ORDER=limit_maker``): the price, how long the order rests, and
when the resting order is cancelled. Pure: the executor and the backtester decide with these.

The order is placed ``ENTRY_LIMIT_OFFSET_PERCENTAGE`` below the best bid, rounded down to the
tick: at or below the bid it can never take liquidity (a LIMIT_MAKER that would is refused by the
exchange with -2010 and priced again from a fresh bid). It rests for
``ENTRY_LIMIT_TIMEOUT_CANDLES`` candles after the signal candle, counted in market time (closed
candles, exchange event times): at the close of the last of them it is cancelled, and what has
filled opens the position. With ``ENTRY_LIMIT_FALLBACK`` an order cancelled without any fill is
replaced by a MARKET buy.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from shared.parameters import StrategyParameters

ZERO = Decimal(0)
WOULD_MATCH = "would immediately match"  # Binance's -2010 text for a LIMIT_MAKER that would take


class CancelReason(StrEnum):
    """Why a resting limit entry is cancelled before it filled completely."""

    TIMEOUT = "timeout"  # its last candle closed
    STOP_REACHED = "stop_reached"  # partly filled and the price fell to the stop of what filled
    CLOSE = "close"  # the operator closed the position


def limit_price(best_bid: Decimal, offset: Decimal, tick_size: Decimal) -> Decimal:
    """The LIMIT_MAKER BUY price: ``offset`` (a fraction) below ``best_bid``, rounded down to the
    tick (never above the bid, so it never crosses the book it was priced from)."""
    if best_bid <= ZERO:
        raise ValueError(f"best bid must be positive, got {best_bid}")
    raw = best_bid * (1 - offset)
    if tick_size <= ZERO:
        return raw
    price = (raw / tick_size).to_integral_value(rounding=ROUND_FLOOR) * tick_size
    return price if price > ZERO else tick_size


def deadline_ms(candle_open_ms: int, interval_ms: int, timeout_candles: int) -> int:
    """Market time at which the limit entry of the signal candle opening at ``candle_open_ms``
    is cancelled: the close of the ``timeout_candles``-th candle after the signal candle."""
    return candle_open_ms + (1 + timeout_candles) * interval_ms


def is_would_match(code: int | None, message: str) -> bool:
    """Whether a refusal is the exchange's "LIMIT_MAKER would take liquidity" (-2010)."""
    return code == -2010 and WOULD_MATCH in message.lower()


def cancel_reason(
    *,
    market_ms: int | None,
    deadline: int,
    price: Decimal | None,
    executed: Decimal,
    average_price: Decimal | None,
    params: StrategyParameters,
) -> CancelReason | None:
    """Whether the resting limit entry is cancelled now, judged at market time ``market_ms``
    (the exchange's time of the latest tick or closed candle) and the latest ``price``.

    Part of it filled and the price at or below the stop the filled part would have (its
    ``average_price`` less STOP_LOSS_PERCENTAGE): it is cancelled at once, so the position opens
    and its stop acts, rather than the filled part waiting unprotected for the timeout."""
    if market_ms is not None and market_ms >= deadline:
        return CancelReason.TIMEOUT
    stop_reached = (
        executed > ZERO
        and price is not None
        and average_price is not None
        and price <= average_price * (1 - params.STOP_LOSS_PERCENTAGE)
    )
    return CancelReason.STOP_REACHED if stop_reached else None


def falls_back(reason: CancelReason, executed: Decimal, params: StrategyParameters) -> bool:
    """Whether a limit entry that ended after ``reason`` with ``executed`` base bought is
    replaced by a MARKET buy: only a timeout with nothing filled, and only with the fallback on."""
    return params.ENTRY_LIMIT_FALLBACK and reason is CancelReason.TIMEOUT and executed <= ZERO


def filled_in_candle(low: Decimal, limit: Decimal) -> bool:
    """The backtest's convention: a resting BUY at ``limit`` fills (completely, as maker, at its
    own price) in the first candle whose low reaches it."""
    return low <= limit
