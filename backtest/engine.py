"""The backtest: the live strategy's indicators, rules, sizing and protection replayed over candles.

Pipeline: ``compute_indicators`` -> ``signal_arrays`` -> stop-loss/take-profit levels of every
possible entry (``protection_levels``) -> compiled walk over the candles (``backtest.kernel``,
conventions in ``backtest.fills``) -> money of each trade in ``Decimal`` with ``size_entry`` and
``sellable_quantity`` -> equity at every close -> summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from backtest import kernel
from backtest.config import BacktestConfig
from backtest.metrics import summarise
from services.executor.protection import ExitReason, protection_levels, realised_return_pct
from services.executor.sizing import SymbolFilters, format_decimal, sellable_quantity, size_entry
from services.strategy.indicators import compute_indicators
from services.strategy.rules import signal_arrays
from shared.candles import CandleArrays, candle_arrays
from shared.parameters import StrategyParameters

ZERO = Decimal(0)


class Trade(NamedTuple):
    """One closed round trip. Times are open times (epoch ms) of the candles whose close or range filled it.

    ``quantity`` is the base bought, ``sold_quantity`` what was sold after the buy commission
    (taken in base) and rounding down to the step; money is in quote units.
    """

    entry_index: int
    exit_index: int
    entry_time: int
    exit_time: int
    entry_price: Decimal
    exit_price: Decimal
    exit_reason: ExitReason
    quantity: Decimal
    sold_quantity: Decimal
    quote_spent: Decimal
    quote_received: Decimal
    return_pct: Decimal
    stop_loss: Decimal
    take_profit: Decimal

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: prices and returns as numbers, quantities as exact decimal text."""
        return {
            "entry_time": self.entry_time,
            "exit_time": self.exit_time,
            "entry_price": float(self.entry_price),
            "exit_price": float(self.exit_price),
            "exit_reason": self.exit_reason.value,
            "return_pct": float(self.return_pct),
            "quantity": format_decimal(self.quantity),
            "sold_quantity": format_decimal(self.sold_quantity),
            "quote_spent": float(self.quote_spent),
            "quote_received": float(self.quote_received),
            "stop_loss": float(self.stop_loss),
            "take_profit": float(self.take_profit),
        }


@dataclass(frozen=True)
class SkippedEntry:
    """An entry signal that sizing refused (the reason names the exchange filter)."""

    time: int
    price: Decimal
    reason: str


@dataclass
class BacktestResult:
    """Everything a run produced; ``to_dict()`` is the JSON output."""

    params: StrategyParameters
    config: BacktestConfig
    filters: SymbolFilters
    candles: CandleArrays
    trades: list[Trade]
    skipped: list[SkippedEntry]
    equity: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"summary": {...}, "trades": [...]}`` with the parameters and settings in the summary."""
        return {"summary": self.summary, "trades": [trade.to_dict() for trade in self.trades]}


def _price(value: float) -> Decimal:
    # The shortest text that reads back as the same float: the price as written in the data.
    return Decimal(repr(float(value)))


def run_backtest(
    candles: pd.DataFrame,
    params: StrategyParameters,
    config: BacktestConfig | None = None,
    *,
    on_stage: Callable[[str], None] | None = None,
    entry_prices: Mapping[int, Decimal] | None = None,
) -> BacktestResult:
    """Backtest the strategy over ``candles`` (oldest first; any slice of a loaded file works).

    ``candles`` has float columns ``open, high, low, close, volume`` and the candle open time as
    an ``open_time`` column (epoch ms) or a DatetimeIndex. Indicators start from the first row
    given. ``on_stage`` is called with the name of each stage as it starts (for progress bars).
    ``entry_prices`` (candle index -> price) replaces the close as the fill of an entry signalled
    at that candle: replaying the fills a live run actually got, whose stop-loss and take-profit
    follow the fill price, shows whether it still traded by the same rules.
    """
    config = config or BacktestConfig()
    stage = on_stage or (lambda name: None)
    symbol = config.symbol or candles.attrs.get("symbol")
    filters = config.resolved_filters(symbol)
    arrays = candle_arrays(candles)
    n = len(arrays)
    if n == 0:
        raise ValueError("no candles to backtest")

    stage("indicators")
    indicators = compute_indicators(candles, params, with_atr=False)
    stage("signals")
    entry, exit_ = signal_arrays(indicators, arrays.close, arrays.volume, params)
    stop_loss = np.full(n, np.nan)
    take_profit = np.full(n, np.nan)
    levels: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    for index in np.flatnonzero(entry[:-1]).tolist():
        price = entry_prices[index] if entry_prices and index in entry_prices else _price(arrays.close[index])
        sl, tp = protection_levels(price, params, filters.tick_size)
        levels[index] = (price, sl, tp)
        stop_loss[index] = float(sl)
        take_profit[index] = float(tp)

    stage("simulation")
    size = len(levels) + 1
    out = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float64))

    def walk(start: int) -> int:
        return int(kernel.walk_trades(arrays.open, arrays.high, arrays.low, arrays.close, entry, exit_,
                                      stop_loss, take_profit, start, *out))

    trades, skipped, cash_steps = _settle(walk, out, levels, arrays, params, config, filters)
    stage("statistics")
    at, cash, base = cash_steps
    equity = kernel.step_values(n, at, cash, float(config.balance))
    equity += kernel.step_values(n, at, base, 0.0) * arrays.close
    summary = summarise(trades=trades, open_time=arrays.open_time, close=arrays.close, equity=equity,
                        starting_balance=config.balance, fee=config.fee, skipped_entries=len(skipped))
    summary.update(symbol=symbol, interval=config.interval or candles.attrs.get("interval"),
                   warmup_candles=params.warmup_candles(),
                   parameters=params.model_dump(mode="json"), settings=settings_dict(config, filters))
    return BacktestResult(params, config, filters, arrays, trades, skipped, equity, summary)


def settings_dict(config: BacktestConfig, filters: SymbolFilters) -> dict[str, str]:
    """The backtest-only settings of a run, by their parameter names."""
    return {
        "FEE": format_decimal(config.fee), "BALANCE": format_decimal(config.balance),
        "TICK_SIZE": format_decimal(filters.tick_size), "STEP_SIZE": format_decimal(filters.market_step),
        "MIN_QTY": format_decimal(filters.market_min_quantity), "MIN_NOTIONAL": format_decimal(filters.market_min_notional),
    }


def _settle(
    walk: Callable[[int], int],
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    levels: dict[int, tuple[Decimal, Decimal, Decimal]],
    arrays: CandleArrays,
    params: StrategyParameters,
    config: BacktestConfig,
    filters: SymbolFilters,
) -> tuple[list[Trade], list[SkippedEntry], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Money of each walked trade, in order; an entry refused by sizing restarts the walk after it.

    Returns the trades, the refused entries and the balance steps ``(candle index, quote, base)``
    that the equity curve is built from (base includes dust left after each sell).
    """
    keep = 1 - config.fee
    cash, dust = config.balance, ZERO
    trades: list[Trade] = []
    skipped: list[SkippedEntry] = []
    step_at: list[int] = []
    step_cash: list[float] = []
    step_base: list[float] = []
    open_time = arrays.open_time

    def walked(start: int) -> list[tuple[int, int, int, float]]:
        count = walk(start)
        return list(zip(*(column[:count].tolist() for column in out), strict=True))

    pending, k = walked(0), 0
    while k < len(pending):
        opened, closed, code, fill = pending[k]
        price, sl, tp = levels[opened]
        sizing = size_entry(cash, price, params, filters)
        if sizing.quantity is None:
            skipped.append(SkippedEntry(int(open_time[opened]), price, sizing.reason))
            pending, k = walked(opened + 1), 0
            continue
        quantity = sizing.quantity
        spent = quantity * price
        credited = quantity * keep
        cash -= spent
        step_at.append(opened)
        step_cash.append(float(cash))
        step_base.append(float(credited + dust))

        if code == kernel.STOP_LOSS and fill == float(sl):
            exit_price = sl
        elif code == kernel.TAKE_PROFIT and fill == float(tp):
            exit_price = tp
        else:
            exit_price = _price(fill)
        sell = sellable_quantity(credited, filters, exit_price)
        if sell.dust:
            sold, received, dust = ZERO, ZERO, dust + credited
        else:
            sold, received, dust = sell.quantity, sell.quantity * exit_price * keep, dust + sell.remainder
        cash += received
        step_at.append(closed)
        step_cash.append(float(cash))
        step_base.append(float(dust))
        trades.append(Trade(
            entry_index=opened, exit_index=closed,
            entry_time=int(open_time[opened]), exit_time=int(open_time[closed]),
            entry_price=price, exit_price=exit_price, exit_reason=kernel.REASONS[code],
            quantity=quantity, sold_quantity=sold, quote_spent=spent, quote_received=received,
            return_pct=realised_return_pct(spent, received), stop_loss=sl, take_profit=tp,
        ))
        k += 1
    steps = (np.asarray(step_at, dtype=np.int64), np.asarray(step_cash), np.asarray(step_base))
    return trades, skipped, steps
