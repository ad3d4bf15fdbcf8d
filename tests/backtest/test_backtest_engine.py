"""run_backtest end to end: money of each trade by hand, refused entries, equity, inputs and output shape."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest import BacktestConfig, run_backtest
from shared.candles import load_candles
from shared.parameters import StrategyParameters
from shared.trading.protection import ExitReason
from shared.trading.strategies.ema_cross_rsi import EmaCrossRsi

DEFAULTS = StrategyParameters()
MINUTE = 60_000
T0 = 1_747_699_200_000  # 2025-05-20T00:00Z


def candles(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    o, h, lo, c = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "open_time": T0 + np.arange(len(rows)) * MINUTE,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": np.ones(len(rows)),
        }
    )


def with_signals(monkeypatch: pytest.MonkeyPatch, entries: set[int], exits: set[int] = frozenset()) -> None:
    def fake(self, indicators: pd.DataFrame, candles: dict[str, np.ndarray], params: StrategyParameters):
        n = len(candles["close"])
        return np.array([i in entries for i in range(n)]), np.array([i in exits for i in range(n)])

    monkeypatch.setattr(EmaCrossRsi, "signal_arrays", fake)


def test_stop_loss_trade_money_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    with_signals(monkeypatch, {0})
    result = run_backtest(
        candles([(1e5, 1e5, 1e5, 1e5), (99000.0, 99500.0, 97000.0, 97500.0), (97500.0,) * 4]),
        DEFAULTS,
        BacktestConfig(symbol="BTCUSDT"),
    )
    (trade,) = result.trades
    # 10000 x 1 % / (100000 x 2 %) = 0.05 BTC for 5000; 0.1 % fee in BTC -> 0.04995 credited and sold
    # at the stop 98000: 0.04995 x 98000 = 4895.1, less 0.1 % -> 4890.2049
    assert (trade.entry_time, trade.exit_time) == (T0, T0 + MINUTE)
    assert (trade.entry_price, trade.exit_price, trade.exit_reason) == (
        D("100000"),
        D("98000.00"),
        ExitReason.STOP_LOSS,
    )
    assert (trade.quantity, trade.sold_quantity) == (D("0.05"), D("0.04995"))
    assert (trade.quote_spent, trade.quote_received) == (D("5000"), D("4890.2049"))
    assert trade.return_pct == D("-2.19590200")
    assert (trade.stop_loss, trade.take_profit) == (D("98000.00"), D("105000.00"))
    np.testing.assert_allclose(result.equity, [5000 + 0.04995 * 1e5, 9890.2049, 9890.2049])
    s = result.summary
    assert s["trades"] == 1 and s["exit_reasons"]["stop_loss"] == 1 and s["wins"] == 0
    assert s["total_return_pct"] == pytest.approx(-1.097951)
    assert s["exposure_pct"] == pytest.approx(100 / 3)
    assert s["max_drawdown_pct"] == pytest.approx(-1.097951)
    assert s["fees_paid"] == pytest.approx(5.0 + 4.8951)


def test_a_live_entry_fill_moves_that_trades_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    # Filled at 101000 instead of the close 100000: the stop moves from 98000 to 98980, inside
    # candle 1 (low 98500), so the trade stops out there instead of leaving on the exit signal.
    with_signals(monkeypatch, {0}, {2})
    rows = [(1e5,) * 4, (99500.0, 99600.0, 98500.0, 99000.0), (99100.0,) * 4]
    by_close = run_backtest(candles(rows), DEFAULTS, BacktestConfig(symbol="BTCUSDT")).trades
    (by_fill,) = run_backtest(
        candles(rows), DEFAULTS, BacktestConfig(symbol="BTCUSDT"), entry_prices={0: D("101000")}
    ).trades
    assert [(t.exit_index, t.exit_reason) for t in by_close] == [(2, ExitReason.SIGNAL)]
    assert (by_fill.entry_price, by_fill.stop_loss, by_fill.take_profit) == (D("101000"), D("98980.00"), D("106050.00"))
    assert (by_fill.exit_index, by_fill.exit_reason, by_fill.exit_price) == (1, ExitReason.STOP_LOSS, D("98980.00"))


def test_dust_after_step_rounding_stays_in_the_equity(monkeypatch: pytest.MonkeyPatch) -> None:
    with_signals(monkeypatch, {0}, {1})
    result = run_backtest(candles([(105954.54,) * 4, (105801.59,) * 4]), DEFAULTS, BacktestConfig(symbol="BTCUSDT"))
    (trade,) = result.trades
    # 0.04719 bought, 0.04714281 credited, 0.04714 sold, 0.00000281 BTC left as dust
    assert (trade.quantity, trade.sold_quantity, trade.exit_reason) == (D("0.04719"), D("0.04714"), ExitReason.SIGNAL)
    cash = 10000 - 0.04719 * 105954.54 + 0.04714 * 105801.59 * 0.999
    assert result.equity[-1] == pytest.approx(cash + 0.00000281 * 105801.59, rel=1e-12)


def test_refused_entry_restarts_the_walk_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # 12 USDT: at 1,000,000 the quantity 0.000006 rounds to 0 (LOT_SIZE); at 100,000 it is 0.00006 (6 USDT).
    with_signals(monkeypatch, {0, 1}, {3})
    rows = [(1e6,) * 4, (1e5,) * 4, (1e5,) * 4, (1e5,) * 4, (1e5,) * 4]
    result = run_backtest(candles(rows), DEFAULTS, BacktestConfig(balance=D("12"), symbol="BTCUSDT"))
    assert [(t.entry_index, t.exit_index, t.quantity) for t in result.trades] == [(1, 3, D("0.00006"))]
    (skipped,) = result.skipped
    assert skipped.time == T0 and skipped.reason.startswith("LOT_SIZE")
    assert result.summary["skipped_entries"] == 1


def test_unsellable_remainder_is_a_total_loss_kept_as_dust(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.00005 BTC (6 USDT) bought, 0.00004995 credited -> 0.00004 sellable, worth 4.8 < minNotional 5
    with_signals(monkeypatch, {0}, {1})
    result = run_backtest(
        candles([(120000.0,) * 4, (119000.0,) * 4]), DEFAULTS, BacktestConfig(balance=D("12"), symbol="BTCUSDT")
    )
    (trade,) = result.trades
    assert (trade.sold_quantity, trade.quote_received, trade.return_pct) == (D("0"), D("0"), D("-100"))
    assert result.equity[-1] == pytest.approx(6.0 + 0.00004995 * 119000.0)


def test_slices_and_datetime_index_give_the_same_trades(sample_file: Path) -> None:
    data = load_candles(sample_file)
    part = data.iloc[2000:5000]
    a = run_backtest(part, DEFAULTS)
    b = run_backtest(part.reset_index(drop=True), DEFAULTS)
    indexed = part.set_index(pd.to_datetime(part["open_time"], unit="ms", utc=True)).drop(columns="open_time")
    c = run_backtest(indexed, DEFAULTS, BacktestConfig(symbol="BTCUSDT"))
    assert len(a.trades) > 10
    assert a.trades == b.trades == c.trades
    assert a.trades[0].entry_time >= int(part["open_time"].iloc[0])
    assert a.summary["start_time"] == int(part["open_time"].iloc[0])


def test_equity_and_summary_are_consistent_with_the_trades(sample_file: Path) -> None:
    result = run_backtest(load_candles(sample_file), DEFAULTS)
    s = result.summary
    pnl = sum(t.quote_received - t.quote_spent for t in result.trades)
    dust = sum((t.quantity * D("0.999") - t.sold_quantity for t in result.trades), D(0))
    last_close = D(repr(float(result.candles.close[-1])))
    assert s["final_equity"] == pytest.approx(float(D(10000) + pnl + dust * last_close), rel=1e-12)
    assert s["trades"] == len(result.trades) == s["wins"] + s["losses"]
    assert sum(s["exit_reasons"].values()) == s["trades"]
    assert s["max_drawdown_pct"] <= 0 and 0 < s["exposure_pct"] < 100
    assert s["symbol"] == "BTCUSDT" and s["interval"] == "1m" and s["candles"] == 10080
    assert s["parameters"]["EMA_SHORT_PERIOD"] == 9 and s["settings"]["FEE"] == "0.001"
    assert all(t.entry_index < t.exit_index for t in result.trades)
    assert all(a.exit_index <= b.entry_index for a, b in zip(result.trades, result.trades[1:], strict=False))
    document = result.to_dict()
    assert set(document) == {"summary", "trades"}
    first = document["trades"][0]
    assert {"entry_time", "exit_time", "entry_price", "exit_price", "exit_reason", "return_pct", "quantity"} <= set(
        first
    )


def test_buy_and_hold_and_sharpe() -> None:
    rows = [(100.0,) * 4] * 1440 + [(110.0,) * 4] * 1440  # two days
    result = run_backtest(candles(rows), DEFAULTS, BacktestConfig(symbol="BTCUSDT"))
    s = result.summary
    assert s["trades"] == 0 and s["total_return_pct"] == 0.0
    assert s["buy_and_hold_return_pct"] == pytest.approx((0.999 * 0.999 * 1.1 - 1) * 100)
    assert s["sharpe_daily"] is None  # flat equity: no variation


def test_no_candles_is_an_error() -> None:
    with pytest.raises(ValueError, match="no candles"):
        run_backtest(candles([(1.0,) * 4])[:0], DEFAULTS)
