"""The fill conventions of the backtester, written plainly in Python.

They match how the live bot trades on closed candles:

* a signal on the close of candle i fills at close[i] (market order right after the close);
* the stop-loss and take-profit are watched from candle i+1 on, through its open, low, high;
* a candle that opens beyond a level fills at its open (a gap skips the level);
* when both levels lie inside one candle the stop-loss is assumed to fill first;
* a protective exit inside candle j wins over an exit signal at the close of j;
* after a protective exit in candle j, an entry signal at the close of j opens a new position;
* a position still open after the last candle is closed at the last close (reason ``end``).

``candle_exit`` is the reference the compiled kernel in ``backtest.kernel`` is tested against.

With ``PROTECTION=exchange`` the OCO resting on the exchange sells instead of the bot's watch:
``oco_candle_exit`` (conventions in ``backtest.oco``, its compiled kernel) follows the simulator's
walk inside a candle, open -> low -> high -> close for a candle closing at or above its open,
open -> high -> low -> close otherwise, so the first level on that path fills.
"""

from __future__ import annotations

from decimal import Decimal

from shared.trading.protection import ExitReason, exit_reason


def candle_exit(
    open_: float, high: float, low: float, stop_loss: float | Decimal, take_profit: float | Decimal
) -> tuple[ExitReason, float | Decimal] | None:
    """Protective exit inside one candle as ``(reason, fill price)``, or None to keep holding."""
    at_open = exit_reason(open_, stop_loss, take_profit)
    if at_open is not None:
        return at_open, open_
    if exit_reason(low, stop_loss, take_profit) is ExitReason.STOP_LOSS:
        return ExitReason.STOP_LOSS, stop_loss
    if exit_reason(high, stop_loss, take_profit) is ExitReason.TAKE_PROFIT:
        return ExitReason.TAKE_PROFIT, take_profit
    return None


def oco_candle_exit(
    open_: float,
    high: float,
    low: float,
    close: float,
    stop: float,
    limit: float,
    take_profit: float,
    triggered: bool = False,
) -> tuple[ExitReason | None, float | None, bool]:
    """The resting OCO against one candle: ``(reason or None, fill price, stop resting unfilled)``.

    ``limit`` is the ``STOP_LOSS_LIMIT`` leg's limit (0 for ``STOP_LOSS``, which sells at any
    price); ``triggered`` says the stop fired on an earlier gap and rests at ``limit``."""
    if not triggered and open_ <= stop:
        if open_ >= limit:
            return ExitReason.STOP_LOSS, open_, False
        triggered = True  # gapped below the limit: the triggered leg rests there
    if triggered:
        return (ExitReason.STOP_LOSS, limit, False) if high >= limit else (None, None, True)
    if open_ >= take_profit:
        return ExitReason.TAKE_PROFIT, take_profit, False
    path = (low, high) if close >= open_ else (high, low)
    for price in path:
        reason = exit_reason(price, stop, take_profit)
        if reason is not None:
            return reason, stop if reason is ExitReason.STOP_LOSS else take_profit, False
    return None, None, False
