"""One trial, as a Dask worker runs it: the backtester's trades with the indicators shared.

Each indicator column is computed once per (data, indicator, period) in a worker process and
kept for every later trial there (``_COLUMNS``), as are the prices in exact units
(``_PRICES``); the per-trial work is the strategy's signals, the compiled walk and the money
in exact integers (``backtest.fast``: the same trades, money and equity as
``backtest.engine.run_backtest`` in ``Decimal``). A run the fast path cannot vouch for (a
moving or ATR stop, the circuit breaker, a sizing quotient on a step boundary) is the
``Decimal`` backtester's own. The module is imported by name on the workers, so they run the
project's code as installed there.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest import fast
from backtest.config import parse_run_settings, split_assignments, strategy_run_parameters
from backtest.engine import BacktestResult, run_backtest
from backtest.optimize.objectives import daily_returns, day_ends, max_drawdown_pct, metrics_of
from backtest.optimize.space import assignment_text
from shared.candles import CandleArrays, candle_arrays
from shared.parameters import ParameterError
from shared.strategy_loader import load_registry
from shared.trading.incremental import IndicatorSpec
from shared.trading.indicators import vectorised
from shared.trading.strategies import Strategy

# About 1 MB per column of 130k candles: a few hundred distinct periods stay in memory.
MAX_COLUMNS = 512
_COLUMNS: OrderedDict[tuple[str, str, IndicatorSpec], npt.NDArray[np.float64]] = OrderedDict()
MAX_SERIES = 64
_SERIES: OrderedDict[tuple[str, str], Series] = OrderedDict()


@dataclass(frozen=True)
class Job:
    """What every trial of a study shares: the strategy and the fixed ``KEY=VALUE`` settings."""

    strategy: str
    strategy_path: str | None = None
    fixed: str = ""


def indicator_frame(token: str, symbol: str, frame: pd.DataFrame, specs: tuple[IndicatorSpec, ...]) -> pd.DataFrame:
    """The strategy's columns over ``frame``, each computed once per worker for data ``token``."""
    return pd.DataFrame(indicator_columns(token, symbol, frame, specs), index=frame.index)


def indicator_columns(
    token: str, symbol: str, frame: pd.DataFrame, specs: tuple[IndicatorSpec, ...]
) -> dict[str, npt.NDArray[np.float64]]:
    """``indicator_frame``'s columns as arrays (what ``Strategy.signal_arrays`` reads)."""
    columns = {}
    for spec in specs:
        key = (token, symbol, spec)
        values = _COLUMNS.get(key)
        if values is None:
            values = vectorised(frame, (spec,))[spec.name].to_numpy()
            _COLUMNS[key] = values
            if len(_COLUMNS) > MAX_COLUMNS:
                _COLUMNS.popitem(last=False)
        else:
            _COLUMNS.move_to_end(key)
        columns[spec.name] = values
    return columns


class Series(NamedTuple):
    """What every trial on one symbol's candles reads besides the indicators."""

    arrays: CandleArrays
    prices: fast.PriceUnits | None
    day_ends: npt.NDArray[np.int64]


def series(token: str, symbol: str, frame: pd.DataFrame) -> Series:
    """The candle arrays of ``frame``, its prices in exact units and its day ends, once per worker for ``token``."""
    key = (token, symbol)
    found = _SERIES.get(key)
    if found is None:
        arrays = candle_arrays(frame)
        found = Series(arrays, fast.price_units(arrays), day_ends(arrays.open_time))
        _SERIES[key] = found
        if len(_SERIES) > MAX_SERIES:
            _SERIES.popitem(last=False)
    else:
        _SERIES.move_to_end(key)
    return found


@dataclass(frozen=True)
class Scored:
    """What a trial's score reads of one symbol's run (the same figures from either path)."""

    open_time: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    balance: float
    pnl: npt.NDArray[np.float64]
    total_return_pct: float
    max_drawdown_pct: float
    day_ends: npt.NDArray[np.int64] | None = None

    @classmethod
    def of(cls, result: BacktestResult) -> Scored:
        pnl = np.array([float(t.quote_received - t.quote_spent) for t in result.trades])
        return cls(
            result.candles.open_time,
            result.equity,
            float(result.config.balance),
            pnl,
            result.summary["total_return_pct"],
            result.summary["max_drawdown_pct"],
        )


def fast_backtest(
    strategy: Strategy, text: str, symbol: str, frame: pd.DataFrame, token: str
) -> tuple[fast.FastRun | None, float]:
    """``backtest.fast``'s run of ``text`` on one symbol (None when only the ``Decimal`` run can
    tell) with the shared indicators, and the starting balance."""
    rest, strategy_params = strategy_run_parameters(text, strategy)
    params, config = parse_run_settings(rest, symbol=symbol)
    rules = params if strategy_params is None else strategy_params
    arrays, prices, _ = series(token, symbol, frame)
    if prices is None or not len(arrays) or not fast.eligible(params, config):
        return None, float(config.balance)
    columns = indicator_columns(token, symbol, frame, strategy.indicators(rules))
    candles = {"open": arrays.open, "high": arrays.high, "low": arrays.low, "close": arrays.close}
    entry, exit_ = strategy.signal_arrays(columns, {**candles, "volume": arrays.volume}, rules)
    run = fast.fast_run(arrays, prices, entry, exit_, params, config, config.resolved_filters(symbol))
    return run, float(config.balance)


def fast_trial(strategy: Strategy, text: str, symbol: str, frame: pd.DataFrame, token: str) -> Scored:
    """A trial's run of ``text`` on one symbol: ``backtest.fast`` when it can vouch for it, else
    the ``Decimal`` backtester (both with the shared indicators); the same figures either way."""
    run, balance = fast_backtest(strategy, text, symbol, frame, token)
    if run is None:
        return Scored.of(backtest(strategy, text, symbol, frame, token))
    arrays, _, ends = series(token, symbol, frame)
    # As backtest.metrics.summarise computes them from the equity.
    total = (float(run.equity[-1]) / balance - 1.0) * 100.0
    drawdown = float(fast.max_drawdown_pct(run.equity, balance))
    return Scored(arrays.open_time, run.equity, balance, run.pnl(), total, drawdown, ends)


def settings_text(fixed: str, values: dict[str, Any]) -> str:
    """The fixed settings with the trial's values on top (a searched name overrides a fixed one)."""
    merged, _ = split_assignments(fixed)
    merged.update(split_assignments(assignment_text(values))[0])
    return " ".join(f"{name}={value}" for name, value in merged.items())


def backtest(
    strategy: Strategy, text: str, symbol: str, frame: pd.DataFrame, token: str | None = None
) -> BacktestResult:
    """The backtester's run of ``text`` on one symbol; shared indicators when ``token`` names the data."""
    rest, strategy_params = strategy_run_parameters(text, strategy)
    params, config = parse_run_settings(rest, symbol=symbol)
    rules = params if strategy_params is None else strategy_params
    indicators = None if token is None else indicator_frame(token, symbol, frame, strategy.indicators(rules))
    return run_backtest(
        frame,
        params,
        config,
        strategy=strategy,
        strategy_params=strategy_params,
        indicators=indicators,
        with_profit=token is None,
    )


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # not inside a Dask worker
        return "local"


def score(runs: list[BacktestResult] | list[Scored]) -> dict[str, Any]:
    """Metrics of one or more symbols' runs traded side by side (equal weight, daily rebalanced)."""
    results = [r if isinstance(r, Scored) else Scored.of(r) for r in runs]
    balance = results[0].balance
    daily = [daily_returns(r.open_time, r.equity, r.balance, r.day_ends) for r in results]
    days = min(len(s) for s in daily)
    returns = np.mean([s[:days] for s in daily], axis=0) if days else np.empty(0)
    pnl = np.concatenate([r.pnl for r in results])
    if len(results) == 1:
        total, drawdown = results[0].total_return_pct, results[0].max_drawdown_pct
    else:
        curve = balance * np.cumprod(1.0 + returns)
        total = (float(curve[-1]) / balance - 1.0) * 100.0 if days else 0.0
        drawdown = max_drawdown_pct(curve, balance)
    metrics = metrics_of(
        returns,
        total_return_pct=float(total),
        max_drawdown_pct=float(drawdown),
        gross_profit=float(pnl[pnl > 0].sum()),
        gross_loss=-float(pnl[pnl < 0].sum()),
        trades=len(pnl),
    )
    return {"metrics": metrics.to_dict(), "returns": [float(x) for x in returns]}


def time_slice(frame: pd.DataFrame, span: tuple[int, int] | None) -> pd.DataFrame:
    """The candles whose open time is in ``[start, end)`` (epoch ms); all of them for None."""
    if span is None:
        return frame
    times = frame["open_time"].to_numpy()
    first, last = (int(i) for i in times.searchsorted(span))
    part = frame.iloc[first:last]
    part.attrs = dict(frame.attrs)
    return part


def run_trial(
    data: dict[str, pd.DataFrame], token: str, job: Job, values: dict[str, Any], span: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Score one parameter set on every symbol of ``data`` (within ``span``, open times in epoch ms);
    invalid parameters come back as ``problems``."""
    return run_trials(data, token, job, [(values, span)])[0]


def run_trials(
    data: dict[str, pd.DataFrame], token: str, job: Job, items: list[tuple[dict[str, Any], tuple[int, int] | None]]
) -> list[dict[str, Any]]:
    """``run_trial`` of each ``(values, span)``, in order: one Dask task for several trials."""
    strategy = load_registry(job.strategy_path).get(job.strategy)
    worker = _worker_address()
    return [_scored(strategy, data, token, job, values, span, worker) for values, span in items]


def run_packed(
    data: dict[str, pd.DataFrame], token: str, job: Job, items: list[tuple[dict[str, Any], tuple[int, int] | None]]
) -> bytes:
    """``run_trials`` pickled, as the pool's tasks return it: one opaque frame, which Dask neither
    sizes nor serialises value by value (a trial's daily returns are a list of floats)."""
    return pickle.dumps(run_trials(data, token, job, items), protocol=pickle.HIGHEST_PROTOCOL)


def _scored(
    strategy: Strategy,
    data: dict[str, pd.DataFrame],
    token: str,
    job: Job,
    values: dict[str, Any],
    span: tuple[int, int] | None,
    worker: str,
) -> dict[str, Any]:
    text = settings_text(job.fixed, values)
    key = f"{token}:{span}"
    try:
        results = [fast_trial(strategy, text, s, time_slice(frame, span), key) for s, frame in data.items()]
    except ParameterError as e:
        return {"problems": [list(p) for p in e.problems], "worker": worker}
    return {**score(results), "worker": worker}
