"""Walk-forward windows and the stitched out-of-sample equity curve (pure functions).

The candles are cut into ``k + train_ratio`` equal parts of length L. Window i (0-based) trains
on ``train_ratio`` parts and tests on the one part right after them: ``rolling`` trains on
parts ``i .. i + train_ratio - 1``, ``anchored`` on every part from the first one. Test parts
follow each other, so the K out-of-sample results cover one contiguous stretch and never
touch their own training candles. Any remainder rows (fewer than one part) go to the last test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class WindowMode(StrEnum):
    ROLLING = "rolling"
    ANCHORED = "anchored"


@dataclass(frozen=True)
class Window:
    """Half-open row ranges ``[train_start, train_end)`` and ``[test_start, test_end)``; ``test_start == train_end``."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def windows(rows: int, k: int, *, train_ratio: int = 3, mode: WindowMode = WindowMode.ROLLING) -> list[Window]:
    """The K train/test windows over ``rows`` candles (see the module docstring)."""
    if k < 1:
        raise ValueError(f"walk-forward needs at least one window, got {k}")
    if train_ratio < 1:
        raise ValueError(f"train_ratio must be at least 1, got {train_ratio}")
    part = rows // (k + train_ratio)
    if part < 2:
        raise ValueError(f"{rows} candles are too few for {k} windows with train_ratio {train_ratio}")
    out = []
    for i in range(k):
        train_start = 0 if mode is WindowMode.ANCHORED else i * part
        train_end = (i + train_ratio) * part
        test_end = rows if i == k - 1 else train_end + part
        out.append(Window(i, train_start, train_end, train_end, test_end))
    return out


def stitch(curves: list[npt.NDArray[np.float64]], starting_balance: float) -> npt.NDArray[np.float64]:
    """One equity curve from the test windows' curves, each of which started at ``starting_balance``:
    every window is rescaled to start where the previous one ended (its returns compound)."""
    level = starting_balance
    parts = []
    for curve in curves:
        scaled = np.asarray(curve, dtype=np.float64) / starting_balance * level
        parts.append(scaled)
        if len(scaled):
            level = float(scaled[-1])
    return np.concatenate(parts) if parts else np.empty(0)
