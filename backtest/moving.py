"""The walk over the candles when a position's stop moves (trailing by a fraction or by ATRs,
break-even) or starts at k x ATR: the same outputs and fill conventions as ``kernel.walk_trades`` (path open -> low ->
high inside a candle, the stop first), with the stop raised by ``shared.trading.stops.moved_stop``
after each candle the position held through has closed. The executor moves it on the same closed
candles, so a candle is always checked against the level set by the candles before it.

With ``PROTECTION=exchange`` (``exchange`` given) each candle meets the resting OCO as in
``backtest.oco`` (``oco.oco_candle_exit``) until a closed candle moves the stop; the executor then
replaces the OCO's stop leg atomically by a single stop order at the moved stop
(``order/cancelReplace``: it places one order, never a list), and from the next candle on the
stop is that order's (the same fills as the leg's) while the take-profit is the bot's: a bot-side
exit at the first walk price at or beyond it (the open when a candle opens above it, else the
take-profit), sold at market as a taker (``stop_candle_exit``). A stop leg that gapped below its
limit and rests there is not moved.

Plain Python: the rules work in ``Decimal`` on the tick grid, exactly as the live executor does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from backtest import kernel, oco
from shared.candles import CandleArrays
from shared.trading.stops import StopRules, atr_of_ranges, atr_window, moved_stop, true_range

if TYPE_CHECKING:
    from backtest.config import BacktestConfig


class StopAtr:
    """The stops' ATR (``shared.trading.stops.window_atr``) at any candle of ``arrays``, computed
    on first use from that candle's window only (as the executor computes it from its kline
    stream), then kept: the walk asks for the candles a position holds through, the engine for
    the entry candles."""

    def __init__(self, arrays: CandleArrays, period: int) -> None:
        self.period, self.size = period, atr_window(period)
        high, low, close = (column.tolist() for column in (arrays.high, arrays.low, arrays.close))
        # Each candle's true range, and its high - low for the candle that opens a window: the
        # same floats ``window_atr`` computes from the window's candles.
        self.spans = [true_range(h, lo, None) for h, lo in zip(high, low, strict=True)]
        self.ranges = [self.spans[0]] + [true_range(high[i], low[i], close[i - 1]) for i in range(1, len(close))]
        self.known: dict[int, Decimal | None] = {}

    def at(self, index: int) -> Decimal | None:
        """ATR at candle ``index``'s close; None before a whole window of candles."""
        if index not in self.known:
            start = index + 1 - self.size
            self.known[index] = (
                None
                if start < 0 or index >= len(self.ranges)
                else atr_of_ranges([self.spans[start], *self.ranges[start + 1 : index + 1]], self.period)
            )
        return self.known[index]


def stop_candle_exit(
    open_: float, high: float, low: float, close: float, stop: float, limit: float, take_profit: float, triggered: bool
) -> tuple[int, float, bool]:
    """One candle against a single resting stop and the bot's watch of the take-profit (after
    the first replacement): the OCO's walk (``oco.oco_candle_exit``) with its take-profit sold
    by the bot at the first walk price at or beyond it (``kernel.TAKE_PROFIT_BOT``)."""
    code, fill, triggered = oco.oco_candle_exit(open_, high, low, close, stop, limit, take_profit, triggered)
    if code == kernel.TAKE_PROFIT:
        return kernel.TAKE_PROFIT_BOT, max(open_, take_profit), triggered
    return code, fill, triggered


def walk_moving(
    arrays: CandleArrays,
    entry: npt.NDArray[np.bool_],
    exit_: npt.NDArray[np.bool_],
    levels: dict[int, tuple[Decimal, Decimal, Decimal]],
    rules: StopRules,
    tick_size: Decimal,
    start: int,
    out: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
    exchange: BacktestConfig | None = None,
    atr: StopAtr | None = None,
) -> int:
    """``kernel.walk_trades`` with moving stops; ``levels`` maps an entry candle to
    ``(entry price, initial stop, take-profit)``; ``exchange``: the OCO's settings with
    ``PROTECTION=exchange``; ``atr`` gives each candle's ATR to a trailing rule in ATRs.
    Returns the trade count written to ``out``."""
    open_, high, low, close = (column.tolist() for column in (arrays.open, arrays.high, arrays.low, arrays.close))
    out_entry, out_exit, out_code, out_price = out
    n, count, opened = len(close), 0, -1
    price = stop = take_profit = Decimal(0)
    triggered = replaced = False  # replaced: a moved stop replaced the OCO by a single stop
    atr_of = atr.at if atr is not None and rules.atr_trailing is not None else None
    for i in range(start, n):
        if opened >= 0:
            if exchange is None:
                code, fill = kernel.candle_exit(open_[i], high[i], low[i], float(stop), float(take_profit))
            else:
                limit = float(exchange.stop_limit(stop, tick_size))
                candle_exit = stop_candle_exit if replaced else oco.oco_candle_exit
                code, fill, triggered = candle_exit(
                    open_[i], high[i], low[i], close[i], float(stop), limit, float(take_profit), triggered
                )
            if code == kernel.NONE and exit_[i]:
                code, fill = kernel.SIGNAL, close[i]
            if code != kernel.NONE:
                out_entry[count], out_exit[count], out_code[count], out_price[count] = opened, i, code, fill
                count, opened, triggered, replaced = count + 1, -1, False, False
            elif rules.moves and not triggered:
                # Each close by itself, as the executor applies them (see ``moved_stop``).
                candle_atr = atr_of(i) if atr_of is not None else None
                moved = moved_stop(stop, price, Decimal(repr(close[i])), rules, tick_size, candle_atr)
                replaced = replaced or (exchange is not None and moved > stop)
                stop = moved
        if opened < 0 and entry[i] and i < n - 1 and i in levels:
            opened = i
            price, stop, take_profit = levels[i]
    if opened >= 0:
        out_entry[count], out_exit[count], out_code[count], out_price[count] = opened, n - 1, kernel.END, close[n - 1]
        count += 1
    return count
