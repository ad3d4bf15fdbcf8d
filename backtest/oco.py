"""Compiled walk for ``PROTECTION=exchange``: the OCO SELL resting on the exchange after each entry.

The executor places, right after an entry fills, an OCO whose stop leg (``STOP_LOSS``, or
``STOP_LOSS_LIMIT`` with its limit ``STOP_LIMIT_OFFSET`` below the stop on a symbol without
``STOP_LOSS``) rests below and whose ``LIMIT_MAKER`` leg rests at the take-profit; the exchange
fills them, one cancelling the other. Inside a candle the price is taken to walk as the
simulator's replay walks it (``services/exchange_sim/walk.py``): open, then low then high when
the candle closes at or above its open, high then low otherwise, then the close, continuously
between those points. Hence, per candle of a position:

* the first level the walk reaches fills: a candle that spans both levels sells at the
  take-profit when it is bearish (its high comes first), at the stop when it is bullish or flat;
* the ``LIMIT_MAKER`` leg sells at its own price, also when the candle opens above it (a
  resting limit order fills at its price), and pays the maker fee;
* the stop leg, triggered inside the candle, sells at the stop (the walk passed through it; a
  ``STOP_LOSS_LIMIT``'s limit lies below the stop, so it crosses there) as a taker;
* a candle that opens at or below the stop (a gap) triggers it at the open: ``STOP_LOSS`` sells
  at the open, ``STOP_LOSS_LIMIT`` at the open if that is at or above its limit; below its limit
  it does not fill: it rests as a LIMIT sell at its limit (the take-profit leg has expired) and
  sells there, as maker, on the first candle whose high reaches it (the same candle included,
  since its high follows its open). An exit signal at a close still cancels and sells at market;
* an exit signal at the close of a candle in which no leg filled sells at that close, as the
  executor does after cancelling the OCO.

``STOP_LOSS`` is modelled as a stop whose limit is 0: any price at or above it fills.
``backtest.fills.oco_candle_exit`` is the Python reference this kernel is tested against.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from backtest.kernel import END, NONE, SIGNAL, STOP_LIMIT_RESTED, STOP_LOSS, TAKE_PROFIT, _compiled

# Codes whose fill is a resting order's (the maker fee applies).
MAKER_CODES = frozenset({TAKE_PROFIT, STOP_LIMIT_RESTED})


@_compiled
def oco_candle_exit(
    open_: float,
    high: float,
    low: float,
    close: float,
    stop: float,
    limit: float,
    take_profit: float,
    triggered: bool,
) -> tuple[int, float, bool]:
    """One candle against the resting OCO: ``(code, fill price, triggered after the candle)``.

    ``triggered`` is True once the stop leg has fired and rests unfilled at ``limit``."""
    if triggered:
        if high >= limit:
            return STOP_LIMIT_RESTED, limit, False
        return NONE, np.nan, True
    if open_ <= stop:
        if open_ >= limit:
            return STOP_LOSS, open_, False
        if high >= limit:
            return STOP_LIMIT_RESTED, limit, False
        return NONE, np.nan, True
    if open_ >= take_profit:
        return TAKE_PROFIT, take_profit, False
    if close >= open_:  # the walk visits the low first
        if low <= stop:
            return STOP_LOSS, stop, False
        if high >= take_profit:
            return TAKE_PROFIT, take_profit, False
    else:
        if high >= take_profit:
            return TAKE_PROFIT, take_profit, False
        if low <= stop:
            return STOP_LOSS, stop, False
    return NONE, np.nan, False


@_compiled
def walk_trades_oco(
    open_: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    entry: npt.NDArray[np.bool_],
    exit_: npt.NDArray[np.bool_],
    stop_loss: npt.NDArray[np.float64],
    stop_limit: npt.NDArray[np.float64],
    take_profit: npt.NDArray[np.float64],
    start: int,
    out_entry: npt.NDArray[np.int64],
    out_exit: npt.NDArray[np.int64],
    out_code: npt.NDArray[np.int64],
    out_price: npt.NDArray[np.float64],
) -> int:
    """``kernel.walk_trades`` with the OCO's fills (``oco_candle_exit``) in place of the bot's
    watch; ``stop_limit[i]`` is the stop leg's limit of an entry at i (0 for ``STOP_LOSS``)."""
    n = close.shape[0]
    count = 0
    holding = False
    triggered = False
    opened = -1
    level_sl = level_limit = level_tp = 0.0
    for i in range(start, n):
        if holding:
            code, price, triggered = oco_candle_exit(
                open_[i], high[i], low[i], close[i], level_sl, level_limit, level_tp, triggered
            )
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
                triggered = False
        if not holding and entry[i] and i < n - 1:
            holding = True
            opened = i
            level_sl = stop_loss[i]
            level_limit = stop_limit[i]
            level_tp = take_profit[i]
    if holding:
        out_entry[count] = opened
        out_exit[count] = n - 1
        out_code[count] = END
        out_price[count] = close[n - 1]
        count += 1
    return count
