"""LIMIT_MAKER entries in the backtest (``backtest.limit_entries``): filled in the first resting
candle whose low reaches the limit, at the limit, as maker; cancelled at the timeout, or
replaced by a MARKET buy at its close with the fallback; signals while it rests are not acted on."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from backtest import BacktestConfig, limit_entries, run_backtest
from backtest.config import parse_run_settings
from shared.candles import CandleArrays, load_candles
from shared.parameters import StrategyParameters
from shared.trading.limit_entry import limit_price

TICK = D("0.01")
LIMIT = StrategyParameters(
    ENTRY_ORDER="limit_maker", ENTRY_LIMIT_OFFSET_PERCENTAGE=D("0.01"), ENTRY_LIMIT_TIMEOUT_CANDLES=2
)


def arrays(rows: list[tuple[float, float, float, float]]) -> CandleArrays:
    o, h, lo, c = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    n = len(rows)
    return CandleArrays(np.arange(n, dtype=np.int64) * 60_000, o, h, lo, c, np.ones(n))


def signals(n: int, *at: int) -> np.ndarray:
    entry = np.zeros(n, dtype=np.bool_)
    entry[list(at)] = True
    return entry


def test_the_first_candle_whose_low_reaches_the_limit_fills_it_at_the_limit() -> None:
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100, 98.9, 99), (99, 99, 99, 99), (99, 99, 99, 99)]
    moved, fills = limit_entries.place(arrays(rows), signals(5, 0, 1), LIMIT, TICK)
    # Limit 99.00 (1 % below the close 100): candle 1's low 99.5 does not reach it, candle 2's does.
    assert np.flatnonzero(moved).tolist() == [2]
    assert fills == {2: limit_entries.LimitFill(0, D("99.00"), True)}  # the signal of candle 1 rested over


def test_unreached_it_is_cancelled_or_replaced_by_a_market_buy_at_the_timeout() -> None:
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 101), (101, 102, 100, 102), (102, 102, 102, 102)]
    moved, fills = limit_entries.place(arrays(rows), signals(4, 0), LIMIT, TICK)
    assert not moved.any() and fills == {}
    with_fallback = LIMIT.model_copy(update={"ENTRY_LIMIT_FALLBACK": True})
    moved, fills = limit_entries.place(arrays(rows), signals(4, 0), with_fallback, TICK)
    assert np.flatnonzero(moved).tolist() == [2] and fills == {
        2: limit_entries.LimitFill(0, D("102.0"), False, opened=limit_entries.Opened.TIMEOUT)
    }


def test_limit_entries_over_a_real_series_fill_at_their_limit_and_pay_the_maker_fee(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:30_000]
    base = {"STOP_LOSS_PERCENTAGE": D("0.003"), "TAKE_PROFIT_PERCENTAGE": D("0.006")}
    params, config = parse_run_settings(
        "ENTRY_ORDER=limit_maker ENTRY_LIMIT_OFFSET_PERCENTAGE=0.0005 ENTRY_LIMIT_TIMEOUT_CANDLES=3 "
        "STOP_LOSS_PERCENTAGE=0.003 TAKE_PROFIT_PERCENTAGE=0.006 FEE=0.001 MAKER_FEE=0.0002"
    )
    limited = run_backtest(candles, params, config)
    market = run_backtest(candles, StrategyParameters(**base), BacktestConfig())
    assert limited.trades and len(limited.trades) <= len(market.trades)
    low = candles["low"].to_numpy()
    for before, trade in zip(limited.trades, limited.trades[1:], strict=False):
        assert trade.entry_index >= before.exit_index  # one position at a time
    for trade in limited.trades:
        assert trade.entry_fee == D("0.0002")
        assert D(repr(float(low[trade.entry_index]))) <= trade.entry_price  # the low reached the limit
    assert limited.summary["settings"]["MAKER_FEE"] == "0.0002"
    # The same limit prices as the executor's: every entry is on the tick.
    assert all(limit_price(t.entry_price, D(0), D("0.01")) == t.entry_price for t in limited.trades)


def test_the_fees_paid_count_the_maker_rate_of_each_limit_entry(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:10_000]
    settings = "ENTRY_ORDER=limit_maker STOP_LOSS_PERCENTAGE=0.003 TAKE_PROFIT_PERCENTAGE=0.006"
    at_taker = run_backtest(candles, *parse_run_settings(settings))
    at_maker = run_backtest(candles, *parse_run_settings(settings + " MAKER_FEE=0"))
    assert at_taker.trades and len(at_maker.trades) == len(at_taker.trades)

    def fees(trades, buy_rate: float) -> float:
        return sum(float(t.quote_spent) * buy_rate + float(t.quote_received) / 0.999 * 0.001 for t in trades)

    assert at_taker.summary["fees_paid"] == pytest.approx(fees(at_taker.trades, 0.001), rel=1e-9)
    assert at_maker.summary["fees_paid"] == pytest.approx(fees(at_maker.trades, 0.0), rel=1e-9)
