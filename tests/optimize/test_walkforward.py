"""Walk-forward windows: train and test never overlap, tests follow each other, stitching compounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from backtest.optimize.walkforward import WindowMode, stitch, windows


@pytest.mark.parametrize("mode", list(WindowMode))
@pytest.mark.parametrize(("rows", "k", "ratio"), [(1000, 4, 3), (1003, 3, 1), (130_708, 6, 4)])
def test_windows_never_overlap_train_and_test(mode: WindowMode, rows: int, k: int, ratio: int) -> None:
    found = windows(rows, k, train_ratio=ratio, mode=mode)
    assert len(found) == k
    for w in found:
        assert 0 <= w.train_start < w.train_end == w.test_start < w.test_end <= rows
        assert not set(range(w.train_start, w.train_end)) & set(range(w.test_start, w.test_end))
    for before, after in itertools.pairwise(found):
        assert before.test_end == after.test_start  # one contiguous out-of-sample stretch
    assert found[-1].test_end == rows


def test_rolling_and_anchored_windows_by_hand() -> None:
    # 10 rows, 2 windows, train = 3 tests: parts of 2 rows.
    rolling = [(w.train_start, w.train_end, w.test_end) for w in windows(10, 2, train_ratio=3)]
    assert rolling == [(0, 6, 8), (2, 8, 10)]
    anchored = [
        (w.train_start, w.train_end, w.test_end) for w in windows(10, 2, train_ratio=3, mode=WindowMode.ANCHORED)
    ]
    assert anchored == [(0, 6, 8), (0, 8, 10)]


def test_too_little_data_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        windows(7, 2, train_ratio=3)
    with pytest.raises(ValueError, match="at least one window"):
        windows(100, 0)


def test_stitch_compounds_each_window_from_where_the_last_ended() -> None:
    # +10 % then -50 %: 1000 -> 1100 -> 550.
    curve = stitch([np.array([1000.0, 1100.0]), np.array([1000.0, 500.0])], 1000.0)
    assert curve.tolist() == pytest.approx([1000.0, 1100.0, 1100.0, 550.0])
