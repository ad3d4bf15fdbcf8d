"""Moving stops in the backtest: a trailing stop exits where the hand-computed level is crossed,
break-even lifts the stop to the entry, the atr mode sets the first level from the ATR, and with
no moving rule the Python walk gives the compiled walk's trades."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from backtest import BacktestConfig, kernel, run_backtest
from backtest.moving import StopAtr, walk_moving
from shared.candles import CandleArrays, load_candles
from shared.parameters import StrategyParameters
from shared.trading.stops import StopRules, atr_window, window_atr
from shared.trading.vocabulary import StopMode

TICK = Decimal("0.01")


def arrays(rows: list[tuple[float, float, float, float]]) -> CandleArrays:
    o, h, lo, c = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    n = len(rows)
    return CandleArrays(np.arange(n, dtype=np.int64) * 60_000, o, h, lo, c, np.ones(n))


def walk(
    candles: CandleArrays, levels, rules: StopRules, atr: StopAtr | None = None
) -> list[tuple[int, int, int, float]]:
    n = len(candles)
    entry = np.zeros(n, dtype=np.bool_)
    entry[list(levels)] = True
    out = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64))
    count = walk_moving(candles, entry, np.zeros(n, dtype=np.bool_), levels, rules, TICK, 0, out, atr=atr)
    return list(zip(*(column[:count].tolist() for column in out), strict=True))


# Entry at the close of candle 0 (100), stop 95, take-profit 200 (out of reach).
RISING = [
    (100.0, 100.0, 100.0, 100.0),
    (100.0, 104.5, 99.5, 104.0),  # closes 104: the trailing stop 104 x 0.98 = 101.92
    (104.0, 110.2, 103.0, 110.0),  # closes 110: 107.80 (the low 103 stayed above 101.92)
    (110.0, 110.5, 108.0, 108.5),  # closes lower: the stop stays 107.80 (the low 108 is above it)
    (108.5, 109.0, 107.0, 108.0),  # trades through 107.80: exit there
    (108.0, 120.0, 90.0, 115.0),
]


def test_trailing_stop_exits_at_the_hand_computed_level() -> None:
    rules = StopRules(trailing=Decimal("0.02"))
    trades = walk(arrays(RISING), {0: (Decimal(100), Decimal(95), Decimal(200))}, rules)
    assert trades == [(0, 4, kernel.STOP_LOSS, 107.8)]


def test_without_trailing_the_same_candles_keep_the_initial_stop() -> None:
    trades = walk(arrays(RISING), {0: (Decimal(100), Decimal(95), Decimal(200))}, StopRules())
    assert trades == [(0, 5, kernel.STOP_LOSS, 95.0)]  # candle 5's low 90 crosses the unmoved 95


def test_break_even_lifts_the_stop_to_the_entry_once() -> None:
    rows = [
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 103.5, 99.0, 103.0),  # a close 3 % above the entry: the stop moves to 100
        (103.0, 103.0, 100.5, 101.0),  # above 100: still held
        (101.0, 101.5, 99.8, 100.2),  # trades through 100: break-even exit
    ]
    rules = StopRules(break_even_at=Decimal("0.03"))
    trades = walk(arrays(rows), {0: (Decimal(100), Decimal(95), Decimal(200))}, rules)
    assert trades == [(0, 3, kernel.STOP_LOSS, 100.0)]


def test_a_gap_below_a_moved_stop_fills_at_the_open() -> None:
    rows = [*RISING[:3], (106.0, 106.5, 105.0, 105.5)]  # opens below the 107.80 trailing stop
    trades = walk(arrays(rows), {0: (Decimal(100), Decimal(95), Decimal(200))}, StopRules(trailing=Decimal("0.02")))
    assert trades == [(0, 3, kernel.STOP_LOSS, 106.0)]


def test_without_moving_rules_the_python_walk_matches_the_compiled_one(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:20_000]
    params = StrategyParameters(STOP_LOSS_PERCENTAGE=Decimal("0.002"), TAKE_PROFIT_PERCENTAGE=Decimal("0.003"))
    compiled = run_backtest(candles, params, BacktestConfig())
    # A break-even beyond the take-profit is never reached: the Python walk with unmoved stops.
    python = run_backtest(candles, params.model_copy(update={"BREAK_EVEN_AT_PERCENTAGE": Decimal("0.5")}))
    assert len(compiled.trades) > 100
    assert [t[:8] for t in python.trades] == [t[:8] for t in compiled.trades]


def test_trailing_stop_in_the_backtest_exits_stops_in_profit(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:20_000]
    fixed = StrategyParameters(STOP_LOSS_PERCENTAGE=Decimal("0.004"), TAKE_PROFIT_PERCENTAGE=Decimal("0.02"))
    trailed = fixed.model_copy(update={"TRAILING_STOP_PERCENTAGE": Decimal("0.002")})
    fixed_stops = [t for t in run_backtest(candles, fixed).trades if t.exit_reason == "stop_loss"]
    trailed_stops = [t for t in run_backtest(candles, trailed).trades if t.exit_reason == "stop_loss"]
    # A fixed stop lies below the entry; only a stop that moved up can exit above it.
    assert all(t.exit_price < t.entry_price for t in fixed_stops)
    assert sum(1 for t in trailed_stops if t.exit_price > t.entry_price) > 10


def test_atr_mode_sets_the_first_stop_from_the_entry_candles_atr(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:20_000]
    params = StrategyParameters(STOP_MODE=StopMode.ATR, STOP_ATR_PERIOD=14, ATR_STOP_MULTIPLIER=Decimal(3))
    result = run_backtest(candles, params)
    opens, c = result.candles.open, result.candles
    stops = [t for t in result.trades if t.exit_reason == "stop_loss"]
    assert len(stops) > 10
    for t in stops:
        # The ATR of the entry candle's window alone: what the executor reads from its klines.
        window = slice(t.entry_index + 1 - atr_window(14), t.entry_index + 1)
        atr = window_atr(c.high[window].tolist(), c.low[window].tolist(), c.close[window].tolist(), 14)
        assert atr is not None
        level = t.entry_price - 3 * atr
        expected = (level / TICK).to_integral_value(rounding="ROUND_CEILING") * TICK
        opened = Decimal(repr(float(opens[t.exit_index])))
        # At the level, or at the open of a candle that gapped below it.
        assert t.exit_price == (expected if opened > expected else opened), t
    percent = [t for t in run_backtest(candles, StrategyParameters()).trades if t.exit_reason == "stop_loss"]
    assert [t.exit_price for t in percent[:5]] != [t.exit_price for t in stops[:5]]


def test_an_atr_trailing_stop_exits_at_the_hand_computed_level_of_each_candles_atr() -> None:
    # ATR(2) over a window of 8 candles: before candle 7 closes there is none, so the stop holds.
    rows = [(100.0, 101.0, 99.0, 100.0)] * 8 + [
        (100.0, 106.0, 100.0, 105.0),  # a wide candle: the ATR grows
        (105.0, 110.0, 104.0, 109.0),  # the stop rises to 109 - 2 x its ATR
        (109.0, 109.5, 90.0, 92.0),  # trades through it: exit at the level
    ]
    candles = arrays(rows)
    atr = StopAtr(candles, 2)
    rules = StopRules(atr_trailing=Decimal(2))
    trades = walk(candles, {7: (Decimal(100), Decimal(95), Decimal(200))}, rules, atr)
    level = Decimal(0)
    for i in (8, 9):
        at = atr.at(i)
        assert at is not None
        level = max(
            level, ((Decimal(repr(rows[i][3])) - 2 * at) / TICK).to_integral_value(rounding="ROUND_CEILING") * TICK
        )
    assert level > Decimal(95)
    assert trades == [(7, 10, kernel.STOP_LOSS, float(level))]


def test_the_backtesters_atr_at_a_candle_is_the_window_atr_of_the_candles_up_to_it(shared_data) -> None:
    c = load_candles(shared_data.main_series()).iloc[:3_000]
    arrays_ = CandleArrays(
        c["open_time"].to_numpy() if "open_time" in c else np.arange(len(c), dtype=np.int64),
        *(c[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")),
    )
    atr = StopAtr(arrays_, 14)
    high, low, close = arrays_.high.tolist(), arrays_.low.tolist(), arrays_.close.tolist()
    for index in (0, atr_window(14) - 2, atr_window(14) - 1, 100, 1_234, 2_999):
        assert atr.at(index) == window_atr(high[: index + 1], low[: index + 1], close[: index + 1], 14), index
    assert atr.at(atr_window(14) - 2) is None and atr.at(2_999) is not None
