"""Whether a BUY signal may open a position, what price sizes it, and how a skipped one is told.

Trading ages are market time: a BUY is acted on only within its allowance after its candle's
close, measured on the market clock, so a replay at any speed decides as at 1x. The one wall
clock rule bounds I/O: a feed silent too long says nothing about the present.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.executor.core.effects import Alert, Effect, Note
from services.executor.errors import ClockSkew, RateLimited, RetryLater
from shared.events import Signal

READS_BEFORE_SIZING = 5  # attempts of the account read, within the signal's allowance
# The exchange's current candle of an entry's first send is read while its intent is written; it
# is used by a send that follows within this many seconds (wall time: the age of an I/O answer).
# Past it (a lock waited for, a Retry-After) it is read again, right before the send.
READ_AHEAD_MAX_AGE_S = 1.0
ALREADY_IN_POSITION = "a position is already"
NO_MARKET_DATA = "no market data received yet"


@dataclass(frozen=True)
class Allowance:
    """How old (market time) a BUY may be: candle length and the allowance after its close."""

    interval_ms: int
    max_age_ms: int
    max_age_candles: float


def allowance_refusal(market_clock_ms: int | None, candle_open_ms: int, allowance: Allowance) -> str:
    """Why a BUY of the candle opening at ``candle_open_ms`` can no longer be acted on ("" if it can)."""
    if market_clock_ms is None:
        return NO_MARKET_DATA
    interval = allowance.interval_ms
    age_ms = market_clock_ms - (candle_open_ms + interval)
    if age_ms > allowance.max_age_ms:
        return (
            f"signal too old: its candle closed {age_ms / interval:.1f} candles before the market clock "
            f"(SIGNAL_MAX_AGE_CANDLES={allowance.max_age_candles:g})"
        )
    return ""


def exchange_allowance_refusal(exchange_candle_open_ms: int, candle_open_ms: int, allowance: Allowance) -> str:
    """Why a BUY of the candle opening at ``candle_open_ms`` may no longer be sent, judged by the
    exchange's current candle (opening at ``exchange_candle_open_ms``) ("" if it may).

    The exchange's now lies somewhere in its current candle, so the end of that candle is taken:
    an order sent now fills before the allowance ends. A kline tells time to the candle, so the
    candle right after the signal's is always allowed (an allowance below one candle is then
    held by the market clock check alone)."""
    interval = allowance.interval_ms
    age_ms = exchange_candle_open_ms - candle_open_ms  # (current candle's end) - (signal candle's close)
    if age_ms > max(allowance.max_age_ms, interval):
        return (
            f"signal too old at the exchange: its candle closed {age_ms / interval:.0f} candles before the end of "
            f"the exchange's current candle (SIGNAL_MAX_AGE_CANDLES={allowance.max_age_candles:g})"
        )
    return ""


def feed_refusal(freshness_ms: int | None, now_ms: int, max_silence_s: float) -> str:
    """Why the market feed cannot be trusted for an entry ("" if it can): it never spoke, or it
    has been silent (wall clock) longer than ``max_silence_s``."""
    if freshness_ms is None:
        return NO_MARKET_DATA
    silent_s = (now_ms - freshness_ms) / 1000
    if silent_s > max_silence_s:
        return f"market data feed silent for {silent_s:.1f}s (ENTRY_MAX_FEED_SILENCE_S={max_silence_s:g})"
    return ""


def state_refusal(bot_refusal: str, position_status: str | None) -> str:
    """Why the bot state or the symbol's position forbids an entry ("" if neither does)."""
    if bot_refusal:
        return bot_refusal
    if position_status is not None:
        return f"{ALREADY_IN_POSITION} {position_status}"
    return ""


def skipped(signal: Signal, reason: str) -> tuple[Effect, ...]:
    """The alert and decision-log note of a BUY signal not acted on."""
    message = f"BUY signal of candle {signal.candle_open_time_ms} skipped, no order sent: {reason}"
    # Already in a position is the normal case of a repeated entry signal, not a problem.
    level = "info" if reason.startswith(ALREADY_IN_POSITION) else "warning"
    pending = reason.startswith(f"{ALREADY_IN_POSITION} OPENING")
    return Alert(level, "entry_skipped", message), Note(
        signal, "skipped: entry pending" if pending else f"skipped: {reason}"
    )


def recent_price(
    last_price: Decimal | None, last_tick_market_ms: int, market_clock_ms: int | None, max_data_age_ms: int
) -> Decimal | None:
    """The latest tick's price if it is recent on the market clock (an entry is sized at it;
    else at the last price market data stored, else at the signal's)."""
    if (
        last_price is not None
        and market_clock_ms is not None
        and market_clock_ms - last_tick_market_ms <= max_data_age_ms
    ):
        return last_price
    return None


def read_retry_delay(
    error: RateLimited | RetryLater | ClockSkew, attempt: int, max_wait_s: float, query_delay_s: float
) -> float | None:
    """How long to wait before reading the account again after ``error`` on read ``attempt``;
    None when the entry gives up (the last attempt, or a Retry-After longer than ``max_wait_s``)."""
    too_long = isinstance(error, RateLimited) and error.retry_after_s > max_wait_s
    if attempt >= READS_BEFORE_SIZING or too_long:
        return None
    return error.retry_after_s if isinstance(error, RateLimited) else query_delay_s
