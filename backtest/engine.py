"""The backtest: the live strategy's indicators, rules, sizing and protection replayed over candles.

Pipeline: the strategy's vectorised indicators (``Strategy.compute``, pandas-ta) and
``Strategy.signal_arrays`` (``ema_cross_rsi`` by default) -> stop-loss/take-profit levels of every
possible entry (``shared.trading.stops.initial_levels``) -> compiled walk over the candles (``backtest.kernel``,
conventions in ``backtest.fills``; ``backtest.oco`` with ``PROTECTION=exchange``) -> money of each
trade in ``Decimal`` with ``size_entry`` and ``sellable_quantity`` -> equity at every close -> summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest import kernel, limit_entries, moving, oco
from backtest.config import BREAKER_KEYS, BacktestConfig, StopLeg
from backtest.metrics import TradeMoney, summarise
from shared.candles import CandleArrays, candle_arrays
from shared.intervals import INTERVAL_MS
from shared.parameters import StrategyParameters
from shared.precision import Precision, split_symbol
from shared.trading import profit
from shared.trading.breaker import BreakerState, ClosedTrade, advance
from shared.trading.profit import TradeRecord
from shared.trading.protection import ExitReason, realised_return_pct
from shared.trading.sizing import SymbolFilters, format_decimal, sellable_quantity, size_entry
from shared.trading.stops import initial_levels, stop_rules
from shared.trading.strategies import Strategy, builtin_registry
from shared.trading.vocabulary import EntryOrder, PositionStatus, ProtectionMode, StopMode

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
    dust_in: Decimal = ZERO
    dust_out: Decimal = ZERO
    maker_exit: bool = False  # the exit was a resting order's fill (PROTECTION=exchange): maker fee
    entry_fee: Decimal | None = None  # the buy's commission rate when not FEE (a limit entry's MAKER_FEE)
    signal_index: int | None = None  # a limit entry's signal candle (it opened on ``entry_index``)

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
            "dust_in": format_decimal(self.dust_in),
            "dust_out": format_decimal(self.dust_out),
            "maker_exit": self.maker_exit,
        }


@dataclass(frozen=True)
class SkippedEntry:
    """An entry signal that sizing refused (the reason names the exchange filter)."""

    time: int
    price: Decimal
    reason: str
    dust: Decimal = ZERO  # the bot's base dust at that moment (sold with the next exit)


@dataclass
class BacktestResult:
    """Everything a run produced; ``to_dict()`` is the JSON output."""

    params: StrategyParameters
    config: BacktestConfig
    filters: SymbolFilters
    candles: CandleArrays
    trades: list[Trade]
    skipped: list[SkippedEntry]
    equity: npt.NDArray[np.float64]
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
    limit_orders: Mapping[int, limit_entries.LimitOrder] | None = None,
    strategy: Strategy | None = None,
    strategy_params: Any = None,
    indicators: pd.DataFrame | None = None,
    with_profit: bool = True,
) -> BacktestResult:
    """Backtest the strategy over ``candles`` (oldest first; any slice of a loaded file works).

    ``candles`` has float columns ``open, high, low, close, volume`` and the candle open time as
    an ``open_time`` column (epoch ms) or a DatetimeIndex. Indicators start from the first row
    given. ``strategy`` (default ``ema_cross_rsi``) decides the entries and exit signals with
    ``strategy_params`` (an instance of its ``Parameters``; default ``params``, which always
    supplies the risk settings: sizing, stop-loss and take-profit). ``on_stage`` is called with
    the name of each stage as it starts (for progress bars). ``indicators`` are the strategy's
    columns already computed over ``candles`` (the optimiser computes each one once for all its
    trials); ``with_profit=False`` leaves out the summary's profit read-model block, which an
    optimiser trial does not read.
    ``entry_prices`` (candle index -> price) replaces the close as the fill of an entry signalled
    at that candle: replaying the fills a live run actually got, whose stop-loss and take-profit
    follow the fill price, shows whether it still traded by the same rules. ``limit_orders``
    (signal candle index -> ``LimitOrder``) does the same for the limit entries of
    ``ENTRY_ORDER=limit_maker``: the price each was placed at and the first walk step it met.
    """
    config = config or BacktestConfig()
    stage = on_stage or (lambda name: None)
    symbol = config.symbol or candles.attrs.get("symbol")
    filters = config.resolved_filters(symbol)
    arrays = candle_arrays(candles)
    n = len(arrays)
    if n == 0:
        raise ValueError("no candles to backtest")

    strategy = strategy or builtin_registry().get("ema_cross_rsi")
    rules_params = params if strategy_params is None else strategy_params
    stage("indicators")
    if indicators is None:
        indicators = strategy.compute(candles, rules_params)
    stage("signals")
    entry, exit_ = strategy.signal_arrays(
        indicators,
        {"open": arrays.open, "high": arrays.high, "low": arrays.low, "close": arrays.close, "volume": arrays.volume},
        rules_params,
    )
    tick = filters.tick_size
    limit_fills: dict[int, limit_entries.LimitFill] = {}
    walk_spec = limit_entries.Walk(tick, filters.step_size, config.maker_fill_quote, config.walk_substeps)
    if params.ENTRY_ORDER is EntryOrder.LIMIT_MAKER:  # conventions in backtest.limit_entries
        entry, limit_fills = limit_entries.place(arrays, entry, params, tick, limit_orders, walk_spec)
        entry_prices = {index: fill.price for index, fill in limit_fills.items()}
    candidates = np.flatnonzero(entry[:-1])
    levels: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    rules = stop_rules(params)
    atr = moving.StopAtr(arrays, params.STOP_ATR_PERIOD) if rules.needs_atr else None
    if atr is not None and rules.mode is StopMode.ATR:
        # No ATR yet, no stop: such an entry is not taken (the executor refuses it the same way).
        candidates = np.array([i for i in candidates.tolist() if atr.at(i) is not None], dtype=np.int64)

    def level_at(index: int, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        entry_atr = atr.at(index) if atr is not None and rules.mode is StopMode.ATR else None
        return (price, *initial_levels(price, params, tick, entry_atr))

    for index, close in zip(candidates.tolist(), arrays.close[candidates].tolist(), strict=True):
        price = entry_prices.get(index) if entry_prices else None
        levels[index] = level_at(index, _price(close) if price is None else price)
    stop_loss = np.full(n, np.nan)
    take_profit = np.full(n, np.nan)
    stop_limit = np.full(n, np.nan)
    on_exchange = config.protection is ProtectionMode.EXCHANGE
    if levels:
        stop_loss[candidates] = [float(level[1]) for level in levels.values()]
        take_profit[candidates] = [float(level[2]) for level in levels.values()]
        if on_exchange:
            stop_limit[candidates] = [float(config.stop_limit(level[1], tick)) for level in levels.values()]

    stage("simulation")
    size = len(levels) + 1
    out = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float64))

    def walk(start: int) -> int:
        if atr is not None or rules.moves:
            exchange = config if on_exchange else None
            return moving.walk_moving(arrays, entry, exit_, levels, rules, tick, start, out, exchange, atr)
        if on_exchange:
            return int(
                oco.walk_trades_oco(
                    *(arrays.open, arrays.high, arrays.low, arrays.close, entry, exit_),
                    *(stop_loss, stop_limit, take_profit, start),
                    *out,
                )
            )
        return int(
            kernel.walk_trades(
                arrays.open, arrays.high, arrays.low, arrays.close, entry, exit_, stop_loss, take_profit, start, *out
            )
        )

    def relocate(old: int, new: int, fill: limit_entries.LimitFill | None) -> None:
        """A limit entry resolved by ``_settle`` opens on candle ``new`` (None: not at all)."""
        entry[old] = False
        levels.pop(old, None)
        limit_fills.pop(old, None)
        stop_loss[old] = take_profit[old] = stop_limit[old] = np.nan
        if fill is None or new >= n - 1 or (atr is not None and rules.mode is StopMode.ATR and atr.at(new) is None):
            return
        entry[new] = True
        limit_fills[new] = fill
        levels[new] = level = level_at(new, fill.price)
        stop_loss[new], take_profit[new] = float(level[1]), float(level[2])
        if on_exchange:
            stop_limit[new] = float(config.stop_limit(level[1], tick))

    interval_ms = INTERVAL_MS.get(config.interval or candles.attrs.get("interval") or "", INTERVAL_MS["1m"])
    limits_ctx = limit_entries.LimitContext(limit_fills, walk_spec, relocate, exit_) if limit_fills else None
    settled = _settle(walk, out, levels, arrays, params, config, filters, interval_ms, limits_ctx)
    stage("statistics")
    equity = kernel.step_values(n, settled.step_at, settled.step_cash, float(config.balance))
    equity += kernel.step_values(n, settled.step_at, settled.step_base, 0.0) * arrays.close
    summary = summarise(
        trades=settled.trades,
        money=settled.money,
        open_time=arrays.open_time,
        close=arrays.close,
        equity=equity,
        starting_balance=config.balance,
        fee=config.fee,
        maker_fee=config.exit_maker_fee,
        skipped_entries=len(settled.skipped),
        entry_fees=np.array([float(config.fee if t.entry_fee is None else t.entry_fee) for t in settled.trades])
        if limit_fills
        else None,
    )
    if with_profit:
        summary["profit"] = profit_block(
            settled.trades,
            symbol or "",
            filters,
            config,
            arrays,
            _price(arrays.close[-1]),
            config.interval or candles.attrs.get("interval"),
        )
    summary.update(
        symbol=symbol,
        interval=config.interval or candles.attrs.get("interval"),
        warmup_candles=strategy.warmup_candles(rules_params),
        strategy=strategy.name,
        parameters=params.model_dump(mode="json"),
        settings=settings_dict(config, filters, maker_entries=bool(limit_fills)),
    )
    if rules_params is not params:
        summary["strategy_parameters"] = rules_params.model_dump(mode="json")
    return BacktestResult(params, config, filters, arrays, settled.trades, settled.skipped, equity, summary)


def trade_records(
    trades: list[Trade], symbol: str, fee: Decimal, interval_ms: int, maker_fee: Decimal | None = None
) -> list[TradeRecord]:
    """The backtest's trades as ledger rows of the profit read model (market time: the close of
    the candle whose decision filled it; the buy commission is taken in base, the sell's in quote,
    at ``maker_fee`` (default ``fee``) for a resting order's fill)."""
    maker = fee if maker_fee is None else maker_fee
    return [
        TradeRecord(
            id=number,
            symbol=symbol,
            status=PositionStatus.CLOSED,
            entry_time_ms=t.entry_time + interval_ms,
            exit_time_ms=t.exit_time + interval_ms,
            entry_price=t.entry_price,
            exit_price=t.exit_price,
            quantity=t.quantity * (1 - (fee if t.entry_fee is None else t.entry_fee)),
            sold_quantity=t.sold_quantity,
            quote_spent=t.quote_spent,
            quote_received=t.quote_received,
            entry_fee_quote=t.quantity * (fee if t.entry_fee is None else t.entry_fee) * t.entry_price,
            exit_fee_quote=t.sold_quantity * t.exit_price * (maker if t.maker_exit else fee),
            dust_in=t.dust_in,
            dust_out=t.dust_out,
        )
        for number, t in enumerate(trades, start=1)
    ]


def profit_block(
    trades: list[Trade],
    symbol: str,
    filters: SymbolFilters,
    config: BacktestConfig,
    arrays: CandleArrays,
    last_price: Decimal,
    interval: str | None,
) -> dict[str, Any]:
    """The profit figures of the run, by the read model the dashboard uses on the live ledger."""
    interval_ms = INTERVAL_MS.get(interval or "", INTERVAL_MS["1m"])
    records = trade_records(trades, symbol, config.fee, interval_ms, config.exit_maker_fee)
    base, quote = split_symbol(symbol) if symbol else ("", "USDT")
    precision = Precision(
        symbol,
        base,
        quote,
        filters.tick_size,
        filters.market_step,
        filters.market_min_quantity,
        filters.market_min_notional,
    )
    result = profit.figures(records, {symbol: last_price}, config.balance, single_symbol=True)
    return {"quote_asset": quote, **profit.figures_dict(result, precision)}


def settings_dict(config: BacktestConfig, filters: SymbolFilters, *, maker_entries: bool = False) -> dict[str, str]:
    """The backtest-only settings of a run, by their parameter names (``MAKER_FEE`` when a resting
    order's fill pays it: the OCO of ``PROTECTION=exchange``, limit entries, whose walk settings
    ``MAKER_FILL_QUOTE`` and ``WALK_SUBSTEPS`` come with it)."""
    maker = (
        {
            "MAKER_FEE": format_decimal(config.exit_maker_fee),
            "MAKER_FILL_QUOTE": format_decimal(config.maker_fill_quote),
            "WALK_SUBSTEPS": str(config.walk_substeps),
        }
        if maker_entries
        else {}
    )
    return {
        "FEE": format_decimal(config.fee),
        "BALANCE": format_decimal(config.balance),
        "TICK_SIZE": format_decimal(filters.tick_size),
        "STEP_SIZE": format_decimal(filters.market_step),
        "MIN_QTY": format_decimal(filters.market_min_quantity),
        "MIN_NOTIONAL": format_decimal(filters.market_min_notional),
        **maker,
        **protection_settings(config),
        **{
            name: str(value)
            for name, value in zip(BREAKER_KEYS, astuple(config.breaker), strict=True)
            if value is not None
        },
    }


def protection_settings(config: BacktestConfig) -> dict[str, str]:
    """``PROTECTION`` and, for the OCO of ``exchange``, its settings, by their parameter names."""
    if config.protection is not ProtectionMode.EXCHANGE:
        return {"PROTECTION": config.protection.value}
    found = {
        "PROTECTION": config.protection.value,
        "STOP_LEG": config.stop_leg.value,
        "MAKER_FEE": format_decimal(config.exit_maker_fee),
    }
    if config.stop_leg is StopLeg.STOP_LOSS_LIMIT:
        found["STOP_LIMIT_OFFSET"] = format_decimal(config.stop_limit_offset)
    return found


class RunLedger(NamedTuple):
    """The run's money, as ``_settle`` found it: the trades, the refused entries, the balance steps the equity curve
    is built from (candle index, quote, base including dust left after each sell) and the money
    of each trade as floats for the statistics (``TradeMoney``)."""

    trades: list[Trade]
    skipped: list[SkippedEntry]
    step_at: npt.NDArray[np.int64]
    step_cash: npt.NDArray[np.float64]
    step_base: npt.NDArray[np.float64]
    money: TradeMoney


def _settle(
    walk: Callable[[int], int],
    out: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
    levels: dict[int, tuple[Decimal, Decimal, Decimal]],
    arrays: CandleArrays,
    params: StrategyParameters,
    config: BacktestConfig,
    filters: SymbolFilters,
    interval_ms: int = INTERVAL_MS["1m"],
    limit_ctx: limit_entries.LimitContext | None = None,
) -> RunLedger:
    """Money of each walked trade, in order; an entry refused by sizing restarts the walk after it.

    Quantities and quote amounts are ``Decimal`` through the executor's own sizing and rounding.
    The float copies kept beside them (for the equity curve and the statistics) are computed in
    float from the same exact quantities rather than converted from each ``Decimal`` result:
    converting costs more than the arithmetic, and the two agree to about 1e-15.
    """
    keep = 1 - config.fee
    keep_f = float(keep)
    on_exchange = config.protection is ProtectionMode.EXCHANGE
    # A resting order's fill (the LIMIT_MAKER leg, a stop leg that rested at its limit) pays the maker fee.
    maker_codes = oco.MAKER_CODES if on_exchange else frozenset()
    maker_keep = 1 - config.exit_maker_fee
    maker_keep_f = float(maker_keep)
    cash, dust = config.balance, ZERO
    cash_f, dust_f = float(cash), 0.0
    trades: list[Trade] = []
    skipped: list[SkippedEntry] = []
    step_at: list[int] = []
    step_cash: list[float] = []
    step_base: list[float] = []
    spent_column: list[float] = []
    received_column: list[float] = []
    open_time = arrays.open_time
    make_trade, reasons = Trade, kernel.REASONS
    stop_code, profit_code = kernel.STOP_LOSS, kernel.TAKE_PROFIT

    def walked(start: int) -> list[tuple[int, int, int, float]]:
        count = walk(start)
        return list(zip(*(column[:count].tolist() for column in out), strict=True))

    limits, breaker = config.breaker, BreakerState()
    pending, k = walked(0), 0
    while k < len(pending):
        opened, closed, code, fill = pending[k]
        price, sl, tp = levels[opened]
        limit = limit_ctx.fills.get(opened) if limit_ctx else None
        if limit is not None and trades and trades[-1].exit_index > limit.origin:
            # A position was held when the signal came: the live bot placed no limit entry.
            pending, k = walked(opened + 1), 0
            continue
        if limits.enabled:
            # As the executor: the entry is decided at its candle's close, in market time.
            decided = advance(breaker, limits, int(open_time[opened]) + interval_ms)
            breaker = decided.state
            if breaker.tripped is not None:
                skipped.append(SkippedEntry(int(open_time[opened]), price, breaker.tripped.refusal, dust))
                pending, k = walked(opened + 1), 0
                continue
        sizing = size_entry(cash, price, params, filters)
        quantity = sizing.quantity
        if quantity is None:
            skipped.append(SkippedEntry(int(open_time[opened]), price, sizing.reason, dust))
            pending, k = walked(opened + 1), 0
            continue
        if limit is not None and limit.quantity is not None:
            quantity = limit.quantity  # as the live order was sized (a replay's ledger)
        if limit_ctx is not None and limit is not None and limit.opened is limit_entries.Opened.UNRESOLVED:
            # Walk the resting order for this quantity: it may open later, smaller, or not at all.
            index, resolved = limit_entries.resolve(arrays, limit, quantity, params, limit_ctx.walk)
            limit_ctx.relocate(opened, index, resolved)
            pending, k = walked(opened), 0
            continue
        spent = sizing.notional if quantity == sizing.quantity else quantity * price
        if limit is not None and limit.filled is not None and limit.filled < quantity:
            quantity, spent = limit.filled, limit.filled * price  # a partial fill opens what filled
        entry_fee = config.exit_maker_fee if limit is not None and limit.maker else None
        keep_in = keep if entry_fee is None else 1 - entry_fee
        credited = quantity * keep_in
        cash -= spent
        quantity_f = float(quantity)
        spent_f = quantity_f * float(price)
        credited_f = quantity_f * float(keep_in)
        cash_f -= spent_f
        step_at.append(opened)
        step_cash.append(cash_f)
        step_base.append(credited_f + dust_f)

        inside = limit_entries.inside_exit(arrays, limit, opened, sl, tp, limit_ctx)
        if inside is not None:  # in the candle the limit entry opened in, after its fill
            closed, code, fill = opened, inside[0], float(inside[1])
        if code == stop_code and fill == float(sl):
            exit_price = sl
        elif code in (profit_code, kernel.TAKE_PROFIT_BOT) and fill == float(tp):
            exit_price = tp
        else:
            exit_price = _price(fill)
        maker = code in maker_codes
        exit_keep, exit_keep_f = (maker_keep, maker_keep_f) if maker else (keep, keep_f)
        # The exit sells the position and the bot's dust of earlier exits, rounded down to the step
        # (as the executor does), so dust never grows beyond one step.
        dust_in = dust
        sell = sellable_quantity(credited + dust_in, filters, exit_price)
        if sell.dust:
            sold, received, dust = ZERO, ZERO, dust_in + credited
            received_f, dust_f = 0.0, dust_f + credited_f
        else:
            sold, received, dust = sell.quantity, sell.quantity * exit_price * exit_keep, sell.remainder
            sold_f = float(sold)
            received_f, dust_f = sold_f * fill * exit_keep_f, dust_f + (credited_f - sold_f)
        cash += received
        cash_f += received_f
        step_at.append(closed)
        step_cash.append(cash_f)
        step_base.append(dust_f)
        spent_column.append(spent_f)
        received_column.append(received_f)
        trades.append(
            make_trade(
                opened,
                closed,
                int(open_time[opened]),
                int(open_time[closed]),
                price,
                exit_price,
                reasons[code],
                quantity,
                sold,
                spent,
                received,
                realised_return_pct(spent, received),
                sl,
                tp,
                dust_in,
                dust,
                maker,
                entry_fee,
                None if limit is None else limit.origin,
            )
        )
        if limits.enabled:
            closed_ms = int(open_time[closed]) + interval_ms
            trade = ClosedTrade(received - spent, closed_ms, config.balance)
            breaker = advance(breaker, limits, closed_ms, trade).state
        if inside is not None:
            pending, k = walked(opened + 1), 0  # the walk after it assumed the position still held
        else:
            k += 1
    money = TradeMoney(
        np.asarray(spent_column),
        np.asarray(received_column),
        np.fromiter((t.exit_index - t.entry_index for t in trades), np.int64, len(trades)),
        Counter(t.exit_reason for t in trades),
    )
    return RunLedger(
        trades, skipped, np.asarray(step_at, dtype=np.int64), np.asarray(step_cash), np.asarray(step_base), money
    )
