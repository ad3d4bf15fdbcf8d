"""Stop-loss and take-profit of an open position, and the realised return of a closed one.

Levels are rounded to the symbol's tick size towards the entry price: the stop-loss up, the
take-profit down. A protective exit thus never lies further from the entry than the configured
percentage, and both levels are valid exchange prices. The backtester uses the same functions.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from shared.parameters import StrategyParameters

ONE = Decimal(1)
HUNDRED = Decimal(100)


class ExitReason(StrEnum):
    """Why a position was closed."""

    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    END = "end"
    MANUAL = "manual"


def _to_tick(price: Decimal, tick_size: Decimal, rounding: str) -> Decimal:
    """``price`` (> 0) on the tick grid, rounded ROUND_FLOOR or ROUND_CEILING.

    ``//`` gives the exact whole number of ticks (a division would first round to 28 digits)
    and costs a fifth of ``to_integral_value``; the backtester calls this for every trade.
    """
    if tick_size <= 0:
        return price
    ticks = price // tick_size
    if rounding == ROUND_CEILING and ticks * tick_size < price:
        ticks += 1
    return ticks * tick_size


def protection_levels(entry_price: Decimal, params: StrategyParameters, tick_size: Decimal) -> tuple[Decimal, Decimal]:
    """``(stop_loss, take_profit)`` in quote per base for a long entry at ``entry_price``.

    stop_loss = entry x (1 - STOP_LOSS_PERCENTAGE) rounded UP to ``tick_size``;
    take_profit = entry x (1 + TAKE_PROFIT_PERCENTAGE) rounded DOWN to ``tick_size``.
    If the tick is so coarse that a level would reach the entry price, it is moved one tick
    away from it, so that stop_loss < entry_price < take_profit always holds.
    """
    if entry_price <= 0:
        raise ValueError(f"entry price must be positive, got {entry_price}")
    stop_loss = _to_tick(entry_price * (ONE - params.STOP_LOSS_PERCENTAGE), tick_size, ROUND_CEILING)
    take_profit = _to_tick(entry_price * (ONE + params.TAKE_PROFIT_PERCENTAGE), tick_size, ROUND_FLOOR)
    if stop_loss >= entry_price:
        stop_loss = _to_tick(entry_price, tick_size, ROUND_FLOOR)
        if stop_loss >= entry_price:
            stop_loss -= tick_size
    if take_profit <= entry_price:
        take_profit = _to_tick(entry_price, tick_size, ROUND_CEILING)
        if take_profit <= entry_price:
            take_profit += tick_size
    return stop_loss, take_profit


def stop_limit_price(stop: Decimal, offset: Decimal, tick_size: Decimal) -> Decimal:
    """The limit price of a ``STOP_LOSS_LIMIT`` sell: ``offset`` (a fraction) below its stop,
    rounded down to the tick. The executor's OCO leg and the backtester's model of it both use it."""
    return _to_tick(stop * (ONE - offset), tick_size, ROUND_FLOOR)


def exit_reason(price: Decimal | float, stop_loss: Decimal | float, take_profit: Decimal | float) -> ExitReason | None:
    """Protective exit triggered by a traded ``price``: at or below the stop-loss, at or above the take-profit.

    The stop-loss is checked first, so it wins if both could apply. None means keep holding.
    """
    if price <= stop_loss:
        return ExitReason.STOP_LOSS
    if price >= take_profit:
        return ExitReason.TAKE_PROFIT
    return None


def realised_return_pct(quote_spent: Decimal, quote_received: Decimal) -> Decimal:
    """Return of a closed trade in percent: (received - spent) / spent x 100.

    ``quote_spent`` is the quote paid for the entry (its commission is taken in base, so it is
    already in the smaller quantity sold); ``quote_received`` is the quote credited by the exit
    after its commission.
    """
    if quote_spent <= 0:
        raise ValueError(f"quote spent must be positive, got {quote_spent}")
    return (quote_received - quote_spent) / quote_spent * HUNDRED
