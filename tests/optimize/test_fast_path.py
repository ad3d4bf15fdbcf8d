"""A trial's shared indicators and integer money change nothing: full trade lists equal the
Decimal backtester's own run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest import fast, kernel
from backtest.metrics import drawdown_pct
from backtest.optimize import trial
from backtest.optimize.trial import backtest, fast_backtest, fast_trial, run_trial, score, settings_text
from shared.candles import load_candles
from shared.trading.strategies import builtin_registry
from tests.support.shared_data import SharedData

DRAWS = {
    "ema_cross_rsi": lambda r: {
        "EMA_SHORT_PERIOD": r.randint(3, 12),
        "EMA_LONG_PERIOD": r.randint(13, 40),
        "RSI_PERIOD": r.choice([7, 14]),
        "USE_EMA_FILTER": r.random() < 0.5,
        "STOP_LOSS_PERCENTAGE": round(r.uniform(0.002, 0.02), 4),
    },
    "rsi2_reversion": lambda r: {
        "RSI_PERIOD": r.randint(2, 4),
        "ENTRY_RSI": round(r.uniform(5, 30), 2),
        "TREND_PERIOD": r.choice([100, 200]),
        "EXIT_PERIOD": r.randint(3, 8),
    },
    "donchian_breakout": lambda r: {
        "ENTRY_PERIOD": r.randint(16, 30),
        "EXIT_PERIOD": r.randint(5, 15),
        "ATR_PERIOD": r.choice([7, 14]),
        "TAKE_PROFIT_PERCENTAGE": round(r.uniform(0.03, 0.08), 4),
    },
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_shared_indicators_give_the_backtesters_exact_trades(name: str) -> None:
    frame = load_candles(SharedData().main_series()).iloc[:40_000]
    strategy = builtin_registry().get(name)
    rng = random.Random(name)
    trial._COLUMNS.clear()
    traded = 0
    for _ in range(12):
        text = settings_text("", DRAWS[name](rng))
        plain = backtest(strategy, text, "BTCUSDT", frame)
        shared = backtest(strategy, text, "BTCUSDT", frame, token="t")
        assert [t.to_dict() for t in shared.trades] == [t.to_dict() for t in plain.trades]
        assert shared.equity.tolist() == plain.equity.tolist()
        traded += len(plain.trades)
    assert traded > 0
    assert trial._COLUMNS  # the columns were kept for the next trial


def test_invalid_parameters_come_back_named(candle_slice: Path) -> None:
    frame = load_candles(candle_slice)
    job = trial.Job("ema_cross_rsi")
    result: dict[str, Any] = run_trial({"BTCUSDT": frame}, "t", job, {"EMA_SHORT_PERIOD": 30, "EMA_LONG_PERIOD": 20})
    assert [name for name, _ in result["problems"]] == ["EMA_SHORT_PERIOD"]
    result = run_trial({"BTCUSDT": frame}, "t", job, {"EMA_SHORT_PERIOD": 5})
    assert result["metrics"]["trades"] > 0 and result["worker"] == "local"
    assert len(result["returns"]) == 5  # 6,000 one-minute candles touch five UTC days


# Settings beside the strategy's own: sizing refusals (a small balance, a high minNotional),
# other fees, ticks and steps, so every branch of the integer money is taken on real candles.
MONEY = [
    "",
    "BALANCE=40 MIN_NOTIONAL=5",
    "FEE=0.00075 CAPITAL_ALLOCATION=0.5 RISK_PER_TRADE=0.03",
    "TICK_SIZE=0.1 STEP_SIZE=0.0001 MIN_NOTIONAL=10 TAKE_PROFIT_PERCENTAGE=0.025",
    "BALANCE=123.45 STEP_SIZE=0.001 FEE=0.002",
]


def _engine_trades(result: Any) -> list[dict[str, Any]]:
    names = list(fast_trade_fields())
    return [{name: getattr(t, name) for name in names} for t in result.trades]


def fast_trade_fields() -> tuple[str, ...]:
    return (
        "entry_index", "exit_index", "exit_reason", "entry_price", "exit_price", "quantity", "sold_quantity",
        "quote_spent", "quote_received", "stop_loss", "take_profit", "dust_in", "dust_out",
    )  # fmt: skip


@pytest.mark.parametrize("name", list(DRAWS))
def test_the_integer_fast_path_gives_the_decimal_backtesters_trades(name: str) -> None:
    """Whole trade lists (exact decimals), refused entries, equity and the trial's score are the
    Decimal backtester's own, on real candles and random parameter sets."""
    frame = load_candles(SharedData().main_series()).iloc[:40_000]
    strategy = builtin_registry().get(name)
    rng = random.Random(f"fast-{name}")
    trial._COLUMNS.clear()
    trial._SERIES.clear()
    traded = refused = 0
    for money in MONEY:
        for _ in range(2):
            text = settings_text(money, DRAWS[name](rng))
            plain = backtest(strategy, text, "BTCUSDT", frame)
            run, _ = fast_backtest(strategy, text, "BTCUSDT", frame, "t")
            assert run is not None, text
            assert fast.decimal_trades(run) == _engine_trades(plain), text
            assert [frame["open_time"].iloc[i] for i in run.skipped] == [s.time for s in plain.skipped]
            assert run.equity.tolist() == plain.equity.tolist()
            assert score([fast_trial(strategy, text, "BTCUSDT", frame, "t")]) == score([plain])
            traded += len(plain.trades)
            refused += len(plain.skipped)
    assert traded > 0 and refused > 0


def test_prices_finer_than_the_tick_and_another_symbols_filters() -> None:
    """DOGEUSDT (five price digits, whole-coin steps) and a tick coarser than the data's prices."""
    frame = load_candles(SharedData().file("DOGEUSDT_1m_2023-03-16_2023-05-01.csv.gz")).iloc[:30_000]
    strategy = builtin_registry().get("ema_cross_rsi")
    for text in ("EMA_SHORT_PERIOD=5 EMA_LONG_PERIOD=21", "EMA_SHORT_PERIOD=7 TICK_SIZE=0.001 STEP_SIZE=10"):
        plain = backtest(strategy, text, "DOGEUSDT", frame)
        run, _ = fast_backtest(strategy, text, "DOGEUSDT", frame, "doge")
        assert run is not None and len(plain.trades) > 0
        assert fast.decimal_trades(run) == _engine_trades(plain)
        assert run.equity.tolist() == plain.equity.tolist()


@pytest.mark.parametrize(
    "settings",
    [
        "STOP_MODE=atr STOP_ATR_PERIOD=14",
        "TRAILING_STOP_PERCENTAGE=0.01",
        "BREAKER_MAX_LOSING_STREAK=3",
        "PROTECTION=exchange",
    ],
)
def test_runs_the_fast_path_does_not_model_are_the_decimal_backtesters(settings: str) -> None:
    frame = load_candles(SharedData().main_series()).iloc[:20_000]
    strategy = builtin_registry().get("ema_cross_rsi")
    text = f"EMA_SHORT_PERIOD=5 {settings}"
    assert fast_backtest(strategy, text, "BTCUSDT", frame, "20k")[0] is None
    plain = backtest(strategy, text, "BTCUSDT", frame)
    assert score([fast_trial(strategy, text, "BTCUSDT", frame, "20k")]) == score([plain])


def test_a_sizing_quotient_near_a_whole_step_is_left_to_decimal() -> None:
    assert fast._floor_sure(1234.5) == 1234
    assert fast._floor_sure(1234.0) == -1
    assert fast._floor_sure(1234.99999999999) == -1
    assert fast._floor_sure(float("nan")) == -1


def test_drawdown_and_equity_kernels_match_their_numpy_definitions() -> None:
    rng = np.random.default_rng(3)
    equity = 10_000 * np.cumprod(1 + rng.normal(0, 0.01, 5000))
    assert fast.max_drawdown_pct(equity, 10_000.0) == float(drawdown_pct(equity, 10_000.0).min())
    close = rng.uniform(1, 2, 1000)
    at = np.sort(rng.choice(1000, 40, replace=False)).astype(np.int64)
    cash, base = rng.uniform(0, 100, 40), rng.uniform(0, 1, 40)
    expected = kernel.step_values(1000, at, cash, 50.0) + kernel.step_values(1000, at, base, 0.0) * close
    assert fast.equity_curve(at, cash, base, close, 50.0).tolist() == expected.tolist()
