"""LIMIT_MAKER entries in the backtest (``ENTRY_ORDER=limit_maker``), by the executor's rules
(``shared.trading.limit_entry``) and the simulator's fill rule for a resting order, along its
price walk (``shared.trading.walk``):

* an entry signal on the close of candle i places a LIMIT_MAKER BUY at ``limit_price`` of the
  close (the best bid at the close is taken to be the close), ``ENTRY_LIMIT_OFFSET_PERCENTAGE``
  below it on the tick; it rests from the step after candle i+1's open (the open is walked at the
  same moment as candle i's close, before the order can land);
* it rests in candles i+1 .. i+``ENTRY_LIMIT_TIMEOUT_CANDLES``, walked as the simulator walks them
  (``WALK_SUBSTEPS`` steps per segment, 1 at replay speeds of 8x and more on 1m candles): every
  step at or below the limit fills it at the limit, as maker (``MAKER_FEE``): all of what is left,
  or with ``MAKER_FILL_QUOTE`` > 0 (the simulator's ``EXCHANGE_SIM_MAKER_FILL_QUOTE``) at most
  that much quote per step, in whole steps of the symbol, one step at least;
* the position opens at the step that completes it, or, partly filled, at the step where the
  price reaches the filled part's stop (the executor cancels then), or at the close of the last
  resting candle (cancelled at the timeout) with what filled: a position of that size. The next
  candle's open still meets it: the simulator walks it at the timeout's market time, with the
  last candle's end, before a cancel can land (it may complete the order there);
* once open, the rest of that candle's walk is watched (stop-loss at or below, take-profit at or
  above, each at its level, from the step after the fill) and an exit signal on its close sells,
  unless the fill came at the candle's end (the executor takes a SELL of a candle that closed no
  later than the entry fill as from before it); then the candles after it;
* nothing filled by the last resting candle: cancelled at its close; with ``ENTRY_LIMIT_FALLBACK``
  a MARKET buy (taker, ``FEE``) at that close takes its place;
* while it rests no other entry signal is acted on (the position is OPENING), and a signal
  that comes while a position is held places nothing (``_settle`` drops the trade whose signal
  candle came before the previous trade's exit).

``place`` picks each entry's candle before the walk, filling it whole at the first step that
reaches it; the engine ``resolve``s it with the quantity sized at that moment and moves the
entry (walking again from there) when a partial fill or a late placement changes its candle.

Known difference from the live bot: the signals skipped because an earlier limit entry rested
are chosen before the walk, so a limit entry that the walk then drops (a position was held)
still hides the signals of its resting candles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from backtest import kernel
from shared.candles import CandleArrays
from shared.parameters import StrategyParameters
from shared.trading.limit_entry import limit_price
from shared.trading.walk import Points, candle_steps, walk_points

ZERO = Decimal(0)
FIRST_STEP = 1  # the step of candle i+1 the order rests from: the open was walked before it landed


class Opened(StrEnum):
    """How a resting limit entry ended and the position opened."""

    FILLED = "filled"  # completely, at the step that completed it
    STOP_REACHED = "stop_reached"  # partly, cancelled when the price reached the filled part's stop
    TIMEOUT = "timeout"  # cancelled at the close of its last candle with what filled
    UNRESOLVED = "unresolved"  # placed whole at the first step that reaches it; not sized yet


class LimitFill(NamedTuple):
    """How a limit entry signalled on candle ``origin`` opened (on the candle it is keyed by).

    ``maker`` False: the MARKET fallback at the timeout's close. ``filled`` is the base bought
    at the limit (None: what sizing gives), ``step`` the walk step of the candle it opened at;
    ``quantity`` the live order's (None: sized by the backtest)."""

    origin: int
    price: Decimal
    maker: bool
    first_step: int = FIRST_STEP
    opened: Opened = Opened.UNRESOLVED
    filled: Decimal | None = None
    step: int = 0
    quantity: Decimal | None = None


@dataclass(frozen=True)
class LimitOrder:
    """A limit entry as the live bot placed it (a replay's ledger): its price, the first walk step
    it could meet, counted over the steps of candles i+1, i+2, ... (the steps due by its placement
    had been walked), and the quantity it was sized to (None: sized by the backtest)."""

    price: Decimal
    first_step: int = FIRST_STEP
    quantity: Decimal | None = None


@dataclass(frozen=True)
class Walk:
    """How the simulator walks a candle and fills a resting order at each step."""

    tick: Decimal
    step_size: Decimal
    maker_fill_quote: Decimal = ZERO
    substeps: int = 1


def _price(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def points(arrays: CandleArrays, index: int) -> Points:
    """The walk's four points of candle ``index``, as the data writes its prices."""
    o, h, lo, c = (_price(column[index]) for column in (arrays.open, arrays.high, arrays.low, arrays.close))
    return walk_points(o, h, lo, c)


def place(
    arrays: CandleArrays,
    entry: npt.NDArray[np.bool_],
    params: StrategyParameters,
    tick: Decimal,
    orders: Mapping[int, LimitOrder] | None = None,
    walk: Walk | None = None,
) -> tuple[npt.NDArray[np.bool_], dict[int, LimitFill]]:
    """The entry signals moved to the candle their limit entry opens on (filled whole at the first
    step that reaches it), and how each opened; ``orders`` are live placements by signal candle."""
    walk = walk or Walk(tick, ZERO)
    n = len(arrays)
    moved = np.zeros(n, dtype=np.bool_)
    fills: dict[int, LimitFill] = {}
    timeout = params.ENTRY_LIMIT_TIMEOUT_CANDLES
    busy_until = -1  # the last candle an accepted limit entry rests in
    for origin in np.flatnonzero(entry[:-1]).tolist():
        if origin <= busy_until:
            continue
        order = (orders or {}).get(origin)
        if order is None:
            order = LimitOrder(limit_price(_price(arrays.close[origin]), params.ENTRY_LIMIT_OFFSET_PERCENTAGE, tick))
        last = min(origin + timeout, n - 1)
        opened: LimitFill | None = None
        index = last
        for candle in range(origin + 1, last + 1):
            start = resting_from(order.first_step, candle - origin - 1, walk)
            prices = candle_steps(points(arrays, candle), walk.substeps, walk.tick)
            if any(p <= order.price for p in prices[start:]):
                opened, index = LimitFill(origin, order.price, True, order.first_step, quantity=order.quantity), candle
                break
        if opened is None and params.ENTRY_LIMIT_FALLBACK and last < n - 1:
            opened = LimitFill(origin, _price(arrays.close[last]), False, opened=Opened.TIMEOUT)
        busy_until = index
        if opened is not None and index < n - 1:  # the kernel opens no position on the last candle
            moved[index] = True
            fills[index] = opened
    return moved, fills


def resting_from(first_step: int, after: int, walk: Walk) -> int:
    """The first step of the ``after``-th candle after the signal candle that meets the order, for
    an order resting from step ``first_step`` counted over those candles' steps (each has
    ``4n + 1``, its end included)."""
    return max(0, first_step - after * (4 * walk.substeps + 1))


def maker_chunk(remaining: Decimal, price: Decimal, walk: Walk) -> Decimal:
    """What one walk step that reaches a resting order fills: all of it, or with
    ``maker_fill_quote`` at most that much quote in whole steps, one step at least (the
    simulator's ``Engine._maker_quantity``)."""
    if walk.maker_fill_quote <= ZERO:
        return remaining
    step = walk.step_size
    most = walk.maker_fill_quote / price
    if step > ZERO:
        most = (most / step).to_integral_value(rounding=ROUND_FLOOR) * step
    return min(remaining, max(step, most))


def resolve(
    arrays: CandleArrays, fill: LimitFill, quantity: Decimal, params: StrategyParameters, walk: Walk
) -> tuple[int, LimitFill | None]:
    """Walk the resting limit entry of ``fill`` for ``quantity``: the candle it opens on and how
    (None: nothing filled and no fallback, or a fallback on the last candle)."""
    n = len(arrays)
    last = min(fill.origin + params.ENTRY_LIMIT_TIMEOUT_CANDLES, n - 1)
    stop = fill.price * (1 - params.STOP_LOSS_PERCENTAGE)
    final = 4 * walk.substeps  # the step of a candle's end: the timeout's market time for the last one
    filled = ZERO
    # The candles it rests in, then the next candle's open: walked at the timeout's market time
    # with the last candle's end, before any cancel can land.
    for candle in range(fill.origin + 1, min(last + 2, n)):
        prices = candle_steps(points(arrays, candle), walk.substeps, walk.tick)
        start = resting_from(fill.first_step, candle - fill.origin - 1, walk)
        for step in range(start, len(prices) if candle <= last else 1):
            price = prices[step]
            if price > fill.price:
                continue
            filled += maker_chunk(quantity - filled, fill.price, walk)
            if filled >= quantity:
                return candle, fill._replace(opened=Opened.FILLED, filled=filled, step=step)
            if price <= stop and candle <= last and not (candle == last and step == final):
                # cancel_reason's STOP_REACHED (before the timeout): the filled part opens, its stop acts
                return candle, fill._replace(opened=Opened.STOP_REACHED, filled=filled, step=step)
    if filled > ZERO:
        return last, fill._replace(opened=Opened.TIMEOUT, filled=filled, step=final)
    if params.ENTRY_LIMIT_FALLBACK and last < n - 1:
        return last, LimitFill(fill.origin, _price(arrays.close[last]), False, opened=Opened.TIMEOUT)
    return last, None


def exit_in_candle(
    arrays: CandleArrays, fill: LimitFill, index: int, stop_loss: Decimal, take_profit: Decimal, walk: Walk
) -> tuple[str, Decimal] | None:
    """The exit inside the candle the limit entry opened in, at a step after the one it opened at
    (the executor acts on no price stamped at or before its fill): ``("stop_loss" |
    "take_profit", level)``; None if none."""
    if not fill.maker or fill.opened is Opened.TIMEOUT:
        return None
    prices = candle_steps(points(arrays, index), walk.substeps, walk.tick)
    for price in prices[fill.step + 1 :]:
        if price <= stop_loss:
            return "stop_loss", stop_loss
        if price >= take_profit:
            return "take_profit", take_profit
    return None


class LimitContext(NamedTuple):
    """What ``_settle`` needs to resolve limit entries (``backtest.limit_entries``): how each opens,
    the walk that fills it, the move of an entry to the candle it really opens on, exit signals."""

    fills: dict[int, LimitFill]
    walk: Walk
    relocate: Callable[[int, int, LimitFill | None], None]
    exit_signals: npt.NDArray[np.bool_]


def inside_exit(
    arrays: CandleArrays,
    limit: LimitFill | None,
    opened: int,
    stop_loss: Decimal,
    take_profit: Decimal,
    limit_ctx: LimitContext | None,
) -> tuple[int, Decimal] | None:
    """The exit of a position a limit entry opened inside candle ``opened``: a level the rest of
    its walk reaches, else an exit signal on its close, as ``(kernel code, price)``."""
    if limit is None or limit_ctx is None or not limit.maker or limit.opened is Opened.TIMEOUT:
        return None
    found = exit_in_candle(arrays, limit, opened, stop_loss, take_profit, limit_ctx.walk)
    if found is not None:
        return (kernel.STOP_LOSS if found[0] == "stop_loss" else kernel.TAKE_PROFIT), found[1]
    if limit_ctx.exit_signals[opened] and limit.step < 4 * limit_ctx.walk.substeps:  # not filled at its close
        return kernel.SIGNAL, _price(arrays.close[opened])
    return None
