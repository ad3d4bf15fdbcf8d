"""The optimiser's fast path: ``run_backtest``'s trades and money in exact integers, compiled.

The walk is ``kernel.walk_trades`` itself (the fill conventions stay in ``backtest.kernel`` /
``backtest.fills``); what changes is the money. ``engine._settle`` sizes and sells every trade
in ``Decimal``; here every amount is a whole number of its smallest unit (prices in 10^-D,
quantities in 10^-Q, the fee in 10^-F, quote in 10^-(Q+D+F), see ``Scales``), which is exact
for the same decimal values, and the loop over the trades is compiled.

Only one step is not an exact integer operation: the sizing's quotients (risk / (price x
stop-loss), spendable / price). ``Decimal`` computes each to 28 digits and rounds it down to the
step; here it is computed in float (relative error below 2e-15, a few roundings) and rounded
down to the step only when it lies more than ``SIZING_MARGIN`` steps from a whole step, where
both roundings must agree. A quotient closer than that, an amount beyond 2^62 units, a moving
or ATR stop, the circuit breaker or a price the data cannot give exactly make ``fast_run``
answer None, and the caller runs the ``Decimal`` backtester instead.

The float copies of the money (equity curve, per-trade spent/received) are the same IEEE
operations in the same order as in ``engine._settle``, on the same values, so the scores are
bit for bit those of the ``Decimal`` run; ``tests/optimize/test_fast_path.py`` compares whole
trade lists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
from numba import njit

from backtest import kernel
from backtest.config import BacktestConfig
from shared.candles import CandleArrays
from shared.parameters import StrategyParameters
from shared.trading.sizing import MARKET_BUY_HEADROOM, SymbolFilters
from shared.trading.stops import stop_rules
from shared.trading.vocabulary import ProtectionMode, StopMode

# Quotients closer than this to a whole step are left to Decimal (the float error is < 1e-9 steps).
SIZING_MARGIN = 1e-7
MAX_UNITS = 2**62
# Price units stay below 2^52 so that each float price has exactly one decimal of D digits.
MAX_PRICE_UNITS = 2**52
MAX_DECIMALS = 12

OK, REFUSED, UNSURE, OVERFLOW = 0, 1, 2, 3


def _compiled[F: Callable[..., Any]](function: F) -> F:
    return cast(F, njit(cache=True, nogil=True)(function))


def decimals(value: Decimal) -> int:
    """Digits after the point of ``value`` written without trailing zeros."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def units(value: Decimal, digits: int) -> int:
    """``value`` x 10^digits as an exact int (``digits`` >= ``decimals(value)``)."""
    return int(value.scaleb(digits))


class PriceUnits(NamedTuple):
    """A series' open and close as whole units of 10^-digits (what ``Decimal(repr(price))`` is),
    and the highest close in those units."""

    digits: int
    open: npt.NDArray[np.int64]
    close: npt.NDArray[np.int64]
    top: int = 0


def price_units(arrays: CandleArrays, at_least: int = 0) -> PriceUnits | None:
    """The fewest digits (>= ``at_least``) writing every open and close exactly, or None.

    A float price ``p`` equals ``u / 10^D`` for a whole ``u`` below 2^52: then ``u x 10^-D`` is
    the only D-digit decimal reading back as ``p``, hence the value of ``repr(p)``.
    """
    prices = np.concatenate((arrays.open, arrays.close))
    if len(prices) == 0 or not np.all(np.isfinite(prices)) or prices.min() <= 0:
        return None
    for digits in range(at_least, MAX_DECIMALS + 1):
        scale = 10.0**digits
        if prices.max() * scale >= MAX_PRICE_UNITS:
            return None
        whole = np.rint(prices * scale)
        if np.array_equal(whole / scale, prices):
            n = len(arrays.open)
            exact = whole.astype(np.int64)
            return PriceUnits(digits, exact[:n], exact[n:], int(exact[n:].max()))
    return None


@dataclass(frozen=True)
class Scales:
    """The run's decimal settings as whole units: prices 10^-D, base 10^-Q, fee 10^-F, quote 10^-(Q+D+F)."""

    price_digits: int
    base_digits: int
    fee_digits: int
    tick: int
    step: int
    min_qty: int
    min_notional: int  # quote units 10^-(Q+D)
    max_qty: int
    keep: int  # 1 - fee in 10^-F
    balance: int  # quote units 10^-(Q+D+F)

    @property
    def quote_digits(self) -> int:
        return self.base_digits + self.price_digits + self.fee_digits


def scales(filters: SymbolFilters, config: BacktestConfig, data_digits: int) -> Scales | None:
    """The integer scales of a run, or None when a setting is not a short enough decimal."""
    step = filters.market_step
    if step <= 0 or filters.tick_size <= 0:
        return None
    if filters.apply_max_to_market and filters.max_notional is not None:
        return None
    d = max(data_digits, decimals(filters.tick_size))
    q = max(decimals(step), decimals(filters.market_min_quantity), decimals(filters.market_max_quantity))
    f = decimals(config.fee)
    k = q + d + f
    if max(d, q, f) > MAX_DECIMALS or decimals(filters.market_min_notional) > q + d or decimals(config.balance) > k:
        return None
    values = Scales(
        d,
        q,
        f,
        units(filters.tick_size, d),
        units(step, q),
        units(filters.market_min_quantity, q),
        units(filters.market_min_notional, q + d),
        units(filters.market_max_quantity, q),
        units(1 - config.fee, f),
        units(config.balance, k),
    )
    if values.balance >= MAX_UNITS or values.max_qty >= MAX_UNITS or values.min_notional >= MAX_UNITS:
        return None
    return values


def levels(
    price: npt.NDArray[np.int64], params: StrategyParameters, tick: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """``protection.protection_levels`` of entries at ``price`` (units 10^-D, ``tick`` in the same units)."""
    sl_pct, tp_pct = params.STOP_LOSS_PERCENTAGE, params.TAKE_PROFIT_PERCENTAGE
    s = max(decimals(sl_pct), decimals(tp_pct))
    one = 10**s
    down, up = one - units(sl_pct, s), one + units(tp_pct, s)
    if len(price) and int(price.max()) * max(up, down, 1) * 2 >= MAX_UNITS:
        return None
    grid = tick * one
    low_raw = price * down
    stop = -(-low_raw // grid) * tick  # ceiling to the tick
    take = (price * up) // grid * tick  # floor to the tick
    # A tick so coarse that a level reaches the entry: moved one tick away from it.
    stop = np.where(stop >= price, price // tick * tick, stop)
    stop = np.where(stop >= price, stop - tick, stop)
    take = np.where(take <= price, -(-price // tick) * tick, take)
    take = np.where(take <= price, take + tick, take)
    return stop.astype(np.int64), take.astype(np.int64)


@_compiled
def _mul(a: int, b: int) -> int:
    """a x b for a, b >= 0, or -1 when it would reach 2^62."""
    if a != 0 and b > (MAX_UNITS - 1) // a:
        return -1
    return a * b


@_compiled
def _floor_sure(x: float) -> int:
    """floor(x) when x is more than SIZING_MARGIN from a whole number (and finite, < 2^62), else -1."""
    if not (x < 4.0e18) or x != x:
        return -1
    whole = np.floor(x)
    if x - whole < SIZING_MARGIN or whole + 1.0 - x < SIZING_MARGIN:
        return -1
    return int(whole)


@_compiled
def settle(
    walked_entry: npt.NDArray[np.int64],
    walked_exit: npt.NDArray[np.int64],
    walked_code: npt.NDArray[np.int64],
    walked_fill: npt.NDArray[np.float64],
    count: int,
    open_u: npt.NDArray[np.int64],
    close_u: npt.NDArray[np.int64],
    stop_u: npt.NDArray[np.int64],
    take_u: npt.NDArray[np.int64],
    stop_f: npt.NDArray[np.float64],
    take_f: npt.NDArray[np.float64],
    setting: npt.NDArray[np.int64],
    ratio: npt.NDArray[np.float64],
    state: npt.NDArray[np.int64],
    state_f: npt.NDArray[np.float64],
    trade_out: npt.NDArray[np.int64],
    money_out: npt.NDArray[np.float64],
    steps_out: npt.NDArray[np.float64],
) -> int:
    """Money of the walked trades in order, as ``engine._settle`` (exact integer units).

    ``setting``: tick, step, min qty, min notional, max qty, keep, 10^F, price scale, base scale,
    the largest cash whose products with the ratios ``Decimal`` keeps exact (ints); ``ratio``:
    CAPITAL_ALLOCATION, RISK_PER_TRADE, STOP_LOSS_PERCENTAGE, 1 - headroom (floats, for the
    sizing quotients only). ``state`` = [cash, dust, trades written, steps
    written, walked trade reached] and ``state_f`` = [cash, dust] are carried across calls.
    Per trade ``trade_out`` gets entry, exit, code, exit price, quantity (steps), sold (steps),
    spent, received, dust in, dust out (units); ``money_out`` spent and received (floats, as
    _settle's) and ``steps_out`` the balance steps (candle, cash, base) of the equity curve.
    Returns OK when every walked trade is settled, REFUSED when sizing refused the entry of
    walked trade ``state[4]`` (the caller walks again after it), UNSURE or OVERFLOW to give up.
    """
    step_u, min_qty, min_notional, max_qty = setting[1], setting[2], setting[3], setting[4]
    keep, fee_scale, most_cash = setting[5], setting[6], setting[9]
    price_scale, base_scale = float(setting[7]), float(setting[8])
    allocation, risk, stop_pct, spend_share = ratio[0], ratio[1], ratio[2], ratio[3]
    keep_f = keep / float(fee_scale)
    cash, dust = state[0], state[1]
    cash_f, dust_f = state_f[0], state_f[1]
    written, steps = state[2], state[3]
    quote_scale = float(fee_scale) * price_scale * base_scale
    step_f = step_u / base_scale
    for k in range(state[4], count):
        opened, closed, code, fill = walked_entry[k], walked_exit[k], walked_code[k], walked_fill[k]
        price = close_u[opened]
        price_f = price / price_scale
        if cash >= most_cash:
            return OVERFLOW
        if cash <= 0 or allocation <= 0.0:
            state[4] = k
            state[0], state[1], state[2], state[3] = cash, dust, written, steps
            state_f[0], state_f[1] = cash_f, dust_f
            return REFUSED
        cash_real = cash / quote_scale
        by_risk = _floor_sure(cash_real * allocation * risk / (price_f * stop_pct * step_f))
        by_cash = _floor_sure(cash_real * allocation * spend_share / (price_f * step_f))
        if by_risk < 0 or by_cash < 0:
            return UNSURE
        quantity = min(by_risk, by_cash, max_qty // step_u)
        base = _mul(quantity, step_u)
        notional = _mul(base, price)
        spent = _mul(notional, fee_scale)
        credited = _mul(base, keep)
        if notional < 0 or spent < 0 or credited < 0:
            return OVERFLOW
        if quantity <= 0 or base < min_qty or notional < min_notional:
            state[4] = k
            state[0], state[1], state[2], state[3] = cash, dust, written, steps
            state_f[0], state_f[1] = cash_f, dust_f
            return REFUSED
        cash -= spent
        quantity_f = base / base_scale
        spent_f = quantity_f * price_f
        credited_f = quantity_f * keep_f
        cash_f -= spent_f
        steps_out[steps, 0], steps_out[steps, 1], steps_out[steps, 2] = opened, cash_f, credited_f + dust_f
        steps += 1

        if code == kernel.STOP_LOSS and fill == stop_f[opened]:
            exit_price = stop_u[opened]
        elif code == kernel.TAKE_PROFIT and fill == take_f[opened]:
            exit_price = take_u[opened]
        elif code == kernel.STOP_LOSS or code == kernel.TAKE_PROFIT:
            exit_price = open_u[closed]  # a gap beyond the level fills at the open
        else:
            exit_price = close_u[closed]
        dust_in = dust
        held = credited + dust_in
        lot = _mul(step_u, fee_scale)
        sold_steps = held // lot
        sold_base = _mul(sold_steps, step_u)
        sold_value = _mul(sold_base, exit_price)
        if sold_base < 0 or sold_value < 0:
            return OVERFLOW
        if sold_steps <= 0 or sold_base < min_qty or sold_value < min_notional:
            sold_steps, received, dust = 0, 0, dust_in + credited
            received_f, dust_f = 0.0, dust_f + credited_f
        else:
            received = _mul(sold_value, keep)
            if received < 0:
                return OVERFLOW
            dust = held - sold_steps * lot
            sold_f = sold_base / base_scale
            received_f, dust_f = sold_f * fill * keep_f, dust_f + (credited_f - sold_f)
        cash += received
        if cash >= MAX_UNITS:
            return OVERFLOW
        cash_f += received_f
        steps_out[steps, 0], steps_out[steps, 1], steps_out[steps, 2] = closed, cash_f, dust_f
        steps += 1
        money_out[written, 0], money_out[written, 1] = spent_f, received_f
        out = trade_out[written]
        out[0], out[1], out[2], out[3], out[4] = opened, closed, code, exit_price, quantity
        out[5], out[6], out[7], out[8], out[9] = sold_steps, spent, received, dust_in, dust
        written += 1
    state[4] = count
    state[0], state[1], state[2], state[3] = cash, dust, written, steps
    state_f[0], state_f[1] = cash_f, dust_f
    return OK


_LOCAL = threading.local()


def _buffers(
    n: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Level arrays of length ``n``, kept per thread: a fresh megabyte per trial costs more in
    page faults than the whole walk."""
    found = getattr(_LOCAL, "levels", None)
    if found is None or len(found[0]) != n:
        found = (np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, np.nan), np.full(n, np.nan))
        _LOCAL.levels = found
    return found


@_compiled
def equity_curve(
    at: npt.NDArray[np.int64],
    cash: npt.NDArray[np.float64],
    base: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    initial: float,
) -> npt.NDArray[np.float64]:
    """``engine.run_backtest``'s equity in one pass: ``step_values(cash) + step_values(base) x close``
    (the same two float operations per candle, hence the same values)."""
    n = close.shape[0]
    out = np.empty(n, dtype=np.float64)
    current_cash, current_base = initial, 0.0
    k, m = 0, at.shape[0]
    for i in range(n):
        while k < m and at[k] == i:
            current_cash, current_base = cash[k], base[k]
            k += 1
        out[i] = current_cash + current_base * close[i]
    return out


@_compiled
def max_drawdown_pct(equity: npt.NDArray[np.float64], starting_balance: float) -> float:
    """``backtest.metrics.drawdown_pct(equity, starting_balance).min()`` in one pass (0 when empty)."""
    peak = starting_balance
    worst = np.inf
    for value in equity:
        if value > peak:
            peak = value
        drawdown = (value / peak - 1.0) * 100.0
        if drawdown < worst:
            worst = drawdown
    return worst if equity.shape[0] else 0.0


class FastRun(NamedTuple):
    """A fast run's trades (one row each: entry, exit, code, exit price, quantity steps, sold
    steps, spent, received, dust in, dust out, in ``scales`` units), its refused entries, the
    per-trade float money and the equity at every close (as ``run_backtest``'s)."""

    scales: Scales
    trades: npt.NDArray[np.int64]
    stop: npt.NDArray[np.int64]
    take: npt.NDArray[np.int64]
    entry_price: npt.NDArray[np.int64]
    skipped: list[int]
    spent: npt.NDArray[np.float64]
    received: npt.NDArray[np.float64]
    equity: npt.NDArray[np.float64]

    def pnl(self) -> npt.NDArray[np.float64]:
        """received - spent of each trade, as ``float`` of the exact difference."""
        exact = self.trades[:, 7] - self.trades[:, 6]
        result: npt.NDArray[np.float64] = exact / float(10**self.scales.quote_digits)
        return result


def cash_limit(params: StrategyParameters) -> int:
    """Cash units below which ``size_entry``'s products (cash x allocation x risk, x the
    headroom share) have at most 27 digits, so ``Decimal``'s 28 keep them exact."""
    digits = [len(str(units(v, decimals(v)))) for v in (params.CAPITAL_ALLOCATION, params.RISK_PER_TRADE)]
    share = len(str(units(1 - MARKET_BUY_HEADROOM, decimals(1 - MARKET_BUY_HEADROOM))))
    return int(min(MAX_UNITS, 10 ** max(0, 27 - digits[0] - max(digits[1], share))))


def eligible(params: StrategyParameters, config: BacktestConfig) -> bool:
    """True when the fast path models the run: fixed percentage levels watched by the bot
    (``PROTECTION=bot``: the OCO's walk and maker fee are ``backtest.oco``'s), no circuit breaker."""
    rules = stop_rules(params)
    return (
        rules.mode is StopMode.PERCENT
        and not rules.moves
        and not config.breaker.enabled
        and config.protection is ProtectionMode.BOT
    )


def fast_run(
    arrays: CandleArrays,
    prices: PriceUnits,
    entry: npt.NDArray[np.bool_],
    exit_: npt.NDArray[np.bool_],
    params: StrategyParameters,
    config: BacktestConfig,
    filters: SymbolFilters,
) -> FastRun | None:
    """``run_backtest``'s trades and equity for the signals ``entry``/``exit_``, or None when
    only the ``Decimal`` run can tell (see the module docstring)."""
    if not eligible(params, config):
        return None
    scale = scales(filters, config, prices.digits)
    if scale is None:
        return None
    n = len(arrays)
    if scale.price_digits == prices.digits:  # the usual case: the series' own units, no copy per trial
        open_u, close_u, top = prices.open, prices.close, prices.top
    else:  # a tick finer than the data's prices
        grow = 10 ** (scale.price_digits - prices.digits)
        open_u, close_u, top = prices.open * grow, prices.close * grow, prices.top * grow
    if n == 0 or top >= MAX_PRICE_UNITS:
        return None
    candidates = np.flatnonzero(entry[:-1])
    found = levels(close_u[candidates], params, scale.tick)
    if found is None:
        return None
    # Only the candidates' entries are ever read (an entry opens only there): the rest of these
    # per-thread buffers keeps whatever an earlier run left.
    stop_u, take_u, stop_f, take_f = _buffers(n)
    stop_u[candidates], take_u[candidates] = found
    price_scale = float(10**scale.price_digits)
    stop_f[candidates] = stop_u[candidates] / price_scale
    take_f[candidates] = take_u[candidates] / price_scale

    size = len(candidates) + 1
    walked = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float64))
    setting = np.array(
        [
            scale.tick,
            scale.step,
            scale.min_qty,
            scale.min_notional,
            scale.max_qty,
            scale.keep,
            10**scale.fee_digits,
            10**scale.price_digits,
            10**scale.base_digits,
            cash_limit(params),
        ],
        dtype=np.int64,
    )
    ratio = np.array(
        [
            float(params.CAPITAL_ALLOCATION),
            float(params.RISK_PER_TRADE),
            float(params.STOP_LOSS_PERCENTAGE),
            float(1 - MARKET_BUY_HEADROOM),
        ]
    )
    if ratio[2] <= 0:
        return None
    state = np.array([scale.balance, 0, 0, 0, 0], dtype=np.int64)
    state_f = np.array([float(config.balance), 0.0])
    trade_out = np.zeros((size, 10), np.int64)
    money_out = np.zeros((size, 2), np.float64)
    steps_out = np.zeros((2 * size, 3), np.float64)
    skipped: list[int] = []
    start = 0
    while True:
        count = int(
            kernel.walk_trades(
                arrays.open, arrays.high, arrays.low, arrays.close, entry, exit_, stop_f, take_f, start, *walked
            )
        )
        state[4] = 0
        status = settle(
            *walked, count, open_u, close_u, stop_u, take_u, stop_f, take_f, setting, ratio, state, state_f,
            trade_out, money_out, steps_out,
        )  # fmt: skip
        if status == OK:
            break
        if status != REFUSED:
            return None
        refused = int(walked[0][state[4]])
        skipped.append(refused)
        start = refused + 1
    written, steps = int(state[2]), int(state[3])
    rows = steps_out[:steps]
    step_at = rows[:, 0].astype(np.int64)
    equity = equity_curve(step_at, rows[:, 1].copy(), rows[:, 2].copy(), arrays.close, float(config.balance))
    trades = trade_out[:written].copy()
    return FastRun(
        scale,
        trades,
        stop_u[trades[:, 0]],
        take_u[trades[:, 0]],
        close_u[trades[:, 0]],
        skipped,
        money_out[:written, 0].copy(),
        money_out[:written, 1].copy(),
        equity,
    )


def decimal_trades(run: FastRun) -> list[dict[str, Any]]:
    """The fast run's trades as exact decimals, named as ``engine.Trade``'s fields (for comparing)."""
    s = run.scales
    price, base, fee, quote = s.price_digits, s.base_digits, s.fee_digits, s.quote_digits

    def dec(value: int, digits: int) -> Decimal:
        return Decimal(int(value)).scaleb(-digits)

    rows = []
    for row, stop, take, entry_price in zip(run.trades, run.stop, run.take, run.entry_price, strict=True):
        rows.append(
            {
                "entry_index": int(row[0]),
                "exit_index": int(row[1]),
                "exit_reason": kernel.REASONS[int(row[2])],
                "entry_price": dec(entry_price, price),
                "exit_price": dec(row[3], price),
                "quantity": dec(row[4] * s.step, base),
                "sold_quantity": dec(row[5] * s.step, base),
                "quote_spent": dec(row[6], quote),
                "quote_received": dec(row[7], quote),
                "stop_loss": dec(stop, price),
                "take_profit": dec(take, price),
                "dust_in": dec(row[8], base + fee),
                "dust_out": dec(row[9], base + fee),
            }
        )
    return rows
