"""Fill conventions on tiny hand-made candle series, expected trades written out by hand.

Entries signal at close 100 -> stop-loss 98, take-profit 105 (2 % / 5 %, tick 0.01).
Candles are (open, high, low, close).
"""

from __future__ import annotations

import numpy as np

from backtest import kernel

QUIET = (100.0, 100.5, 99.5, 100.0)


def walk(
    candles: list[tuple[float, float, float, float]], entries: set[int], exits: set[int] = frozenset(), start: int = 0
) -> list[tuple[int, int, str, float]]:
    o, h, lo, c = (np.array(column, dtype=float) for column in zip(*candles, strict=True))
    n = len(candles)
    entry = np.array([i in entries for i in range(n)])
    exit_ = np.array([i in exits for i in range(n)])
    stop_loss = np.where(entry, np.round(c * 0.98, 2), np.nan)
    take_profit = np.where(entry, np.round(c * 1.05, 2), np.nan)
    out = (np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1))
    count = kernel.walk_trades(o, h, lo, c, entry, exit_, stop_loss, take_profit, start, *out)
    return [
        (int(out[0][k]), int(out[1][k]), kernel.REASONS[int(out[2][k])].value, float(out[3][k])) for k in range(count)
    ]


def test_candle_opening_below_the_stop_fills_at_its_open() -> None:
    assert walk([QUIET, (97.0, 97.5, 96.0, 97.0), QUIET], {0}) == [(0, 1, "stop_loss", 97.0)]


def test_candle_opening_above_the_take_profit_fills_at_its_open() -> None:
    assert walk([QUIET, (106.0, 107.0, 105.5, 106.5), QUIET], {0}) == [(0, 1, "take_profit", 106.0)]


def test_open_exactly_on_a_level_fills_there() -> None:
    assert walk([QUIET, (98.0, 99.0, 97.0, 98.5), QUIET], {0}) == [(0, 1, "stop_loss", 98.0)]
    assert walk([QUIET, (105.0, 106.0, 104.0, 105.5), QUIET], {0}) == [(0, 1, "take_profit", 105.0)]


def test_levels_inside_a_candle_fill_at_the_level_and_touching_counts() -> None:
    assert walk([QUIET, (100.0, 101.0, 98.0, 99.0), QUIET], {0}) == [(0, 1, "stop_loss", 98.0)]
    assert walk([QUIET, (100.0, 105.0, 99.0, 104.0), QUIET], {0}) == [(0, 1, "take_profit", 105.0)]
    assert walk([QUIET, (100.0, 104.99, 98.01, 100.0), QUIET], {0}) == [(0, 2, "end", 100.0)]


def test_stop_loss_first_when_both_levels_lie_inside_one_candle() -> None:
    assert walk([QUIET, (100.0, 106.0, 97.0, 105.5), QUIET], {0}) == [(0, 1, "stop_loss", 98.0)]


def test_levels_are_watched_from_the_next_candle_on() -> None:
    # The entry candle itself dipped below 98 before closing at 100: no exit on it.
    assert walk([(100.0, 100.0, 90.0, 100.0), QUIET, QUIET], {0}) == [(0, 2, "end", 100.0)]


def test_exit_signal_fills_at_the_close() -> None:
    assert walk([QUIET, QUIET, (100.0, 101.0, 99.0, 100.7), QUIET], {0}, {2}) == [(0, 2, "signal", 100.7)]


def test_stop_inside_a_candle_beats_the_exit_signal_at_its_close() -> None:
    assert walk([QUIET, (100.0, 101.0, 97.5, 99.0), QUIET], {0}, {1}) == [(0, 1, "stop_loss", 98.0)]


def test_new_entry_at_the_close_of_the_candle_that_stopped_out() -> None:
    # Second entry at close 99 -> levels 97.02 / 103.95; candle 3 reaches 103.95.
    candles = [QUIET, (100.0, 100.5, 97.0, 99.0), (99.0, 99.5, 98.5, 99.0), (99.0, 104.0, 98.9, 103.0), QUIET]
    assert walk(candles, {0, 1}) == [(0, 1, "stop_loss", 98.0), (1, 3, "take_profit", 103.95)]


def test_open_position_is_closed_at_the_last_close() -> None:
    assert walk([QUIET, QUIET, (100.0, 101.0, 99.0, 100.3)], {0}) == [(0, 2, "end", 100.3)]


def test_entry_on_the_last_candle_and_entries_while_holding_are_ignored() -> None:
    assert walk([QUIET, QUIET, QUIET], {2}) == []
    assert walk([QUIET, QUIET, QUIET, QUIET, QUIET], {0, 1, 2}, {3}) == [(0, 3, "signal", 100.0)]


def test_walk_can_start_later_in_the_series() -> None:
    assert walk([QUIET, QUIET, QUIET, QUIET], {0, 2}, start=1) == [(2, 3, "end", 100.0)]
