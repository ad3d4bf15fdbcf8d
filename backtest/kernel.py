"""Compiled walk over the candles: where each position opens and closes, and why.

The rule for a protective exit is the one of ``shared.trading.protection.exit_reason``
(price at or below the stop-loss -> stop, at or above the take-profit -> take-profit, the stop
first), applied along the assumed path of a candle: open, then low, then high. Hence a candle
that opens beyond a level fills at its open, and when both levels lie inside one candle the
stop-loss fills first. ``tests/backtest`` checks these kernels against ``exit_reason``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from numba import njit

from shared.trading.protection import ExitReason

NONE, STOP_LOSS, TAKE_PROFIT, SIGNAL, END = 0, 1, 2, 3, 4
# PROTECTION=exchange (``backtest.oco``): a stop leg that gapped below its limit rested there and
# filled later at the limit, as maker.
STOP_LIMIT_RESTED = 5
# PROTECTION=exchange after a moved stop replaced the OCO by a single stop order
# (``backtest.moving``): the bot's own take-profit, sold at market (the taker fee).
TAKE_PROFIT_BOT = 6
REASONS = {
    STOP_LOSS: ExitReason.STOP_LOSS,
    STOP_LIMIT_RESTED: ExitReason.STOP_LOSS,
    TAKE_PROFIT: ExitReason.TAKE_PROFIT,
    TAKE_PROFIT_BOT: ExitReason.TAKE_PROFIT,
    SIGNAL: ExitReason.SIGNAL,
    END: ExitReason.END,
}


def _compiled[F: Callable[..., Any]](function: F) -> F:
    # numba ships no type information: the compiled function keeps the Python one's signature.
    return cast(F, njit(cache=True, nogil=True)(function))


@_compiled
def exit_code(price: float, stop_loss: float, take_profit: float) -> int:
    """Compiled ``exit_reason``: STOP_LOSS, TAKE_PROFIT or NONE for one traded price."""
    if price <= stop_loss:
        return STOP_LOSS
    if price >= take_profit:
        return TAKE_PROFIT
    return NONE


@_compiled
def candle_exit(open_: float, high: float, low: float, stop_loss: float, take_profit: float) -> tuple[int, float]:
    """Protective exit inside one candle as ``(code, fill price)``; ``(NONE, nan)`` when none.

    Path open -> low -> high: a gap beyond a level fills at the open, otherwise at the level.
    """
    code = exit_code(open_, stop_loss, take_profit)
    if code != NONE:
        return code, open_
    if exit_code(low, stop_loss, take_profit) == STOP_LOSS:
        return STOP_LOSS, stop_loss
    if exit_code(high, stop_loss, take_profit) == TAKE_PROFIT:
        return TAKE_PROFIT, take_profit
    return NONE, np.nan


@_compiled
def walk_trades(
    open_: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    entry: npt.NDArray[np.bool_],
    exit_: npt.NDArray[np.bool_],
    stop_loss: npt.NDArray[np.float64],
    take_profit: npt.NDArray[np.float64],
    start: int,
    out_entry: npt.NDArray[np.int64],
    out_exit: npt.NDArray[np.int64],
    out_code: npt.NDArray[np.int64],
    out_price: npt.NDArray[np.float64],
) -> int:
    """Simulate one long position at a time from candle ``start`` (flat); return the trade count.

    An entry signal on candle i (not the last one) opens at close[i] with the levels
    ``stop_loss[i]``/``take_profit[i]``; from candle i+1 on each candle is checked for a
    protective exit first, then for an exit signal at its close. After a protective exit in
    candle j an entry signal at the close of j opens again. A position still open at the end
    closes at the last close (END). Outputs: entry index, exit index, exit code, exit price.
    """
    n = close.shape[0]
    count = 0
    holding = False
    opened = -1
    level_sl = 0.0
    level_tp = 0.0
    for i in range(start, n):
        if holding:
            code, price = candle_exit(open_[i], high[i], low[i], level_sl, level_tp)
            if code == NONE and exit_[i]:
                code = SIGNAL
                price = close[i]
            if code != NONE:
                out_entry[count] = opened
                out_exit[count] = i
                out_code[count] = code
                out_price[count] = price
                count += 1
                holding = False
        if not holding and entry[i] and i < n - 1:
            holding = True
            opened = i
            level_sl = stop_loss[i]
            level_tp = take_profit[i]
    if holding:
        out_entry[count] = opened
        out_exit[count] = n - 1
        out_code[count] = END
        out_price[count] = close[n - 1]
        count += 1
    return count


@_compiled
def step_values(
    n: int, at: npt.NDArray[np.int64], values: npt.NDArray[np.float64], initial: float
) -> npt.NDArray[np.float64]:
    """Array of length n holding ``initial`` until index ``at[k]``, then ``values[k]`` (``at`` ascending)."""
    out = np.empty(n, dtype=np.float64)
    current = initial
    k = 0
    m = at.shape[0]
    for i in range(n):
        while k < m and at[k] == i:
            current = values[k]
            k += 1
        out[i] = current
    return out
