"""Fixtures of the optimiser tests: a slice of the public candle set written as a candle file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.candles import load_candles
from tests.support.shared_data import SharedData

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_slice(source: Path, folder: Path, rows: int) -> Path:
    """The first ``rows`` candles of ``source`` as ``<SYMBOL>_<interval>_slice.csv.gz`` in ``folder``."""
    frame = load_candles(source)
    symbol, interval = frame.attrs["symbol"], frame.attrs["interval"]
    path = folder / f"{symbol}_{interval}_slice.csv.gz"
    frame.iloc[:rows].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def candle_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 real BTCUSDT 1m candles (about four days) of the public candle set."""
    return write_slice(SharedData().main_series(), tmp_path_factory.mktemp("candles"), 6000)
