"""Candle files: names, gzip or plain text, exact numbers, arrays."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.candles import CandleFileError, candle_arrays, interval_ms, load_candles, parse_file_name

TEXT = "open_time,open,high,low,close,volume\n0,1.1,2.2,0.3,0.1,5\n60000,0.1,0.30000000000000004,0.1,0.2,0\n"


def test_names_give_symbol_and_interval() -> None:
    assert parse_file_name("BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz") == ("BTCUSDT", "1m")
    assert parse_file_name(Path("/x/DOGEUSDT_1h.csv")) == ("DOGEUSDT", "1h")
    with pytest.raises(CandleFileError):
        parse_file_name("candles.csv")
    assert (interval_ms("1m"), interval_ms("5m"), interval_ms("1h"), interval_ms("1d")) == (
        60_000,
        300_000,
        3_600_000,
        86_400_000,
    )


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_plain_and_gzip_files_read_the_same_exact_numbers(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ETHUSDT_5m_test{suffix}"
    path.write_bytes(gzip.compress(TEXT.encode()) if suffix.endswith(".gz") else TEXT.encode())
    frame = load_candles(path)
    assert frame.attrs["symbol"] == "ETHUSDT" and frame.attrs["interval"] == "5m"
    assert list(frame.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert frame["open_time"].dtype == np.int64 and frame["close"].dtype == np.float64
    assert frame["high"].iloc[1] == 0.1 + 0.2  # shortest round-trip text reads back bit-exactly


def test_rows_must_go_forward_in_time(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1m_bad.csv"
    path.write_text("open_time,open,high,low,close,volume\n60000,1,1,1,1,1\n0,1,1,1,1,1\n")
    with pytest.raises(CandleFileError, match="increasing"):
        load_candles(path)


def test_arrays_from_column_or_datetime_index() -> None:
    frame = pd.DataFrame(
        {
            "open_time": [0, 60_000],
            "open": [1.0, 2.0],
            "high": [1.0, 2.0],
            "low": [1.0, 2.0],
            "close": [1.0, 2.0],
            "volume": [3.0, 4.0],
        }
    )
    arrays = candle_arrays(frame)
    assert arrays.open_time.tolist() == [0, 60_000] and len(arrays) == 2
    indexed = frame.set_index(pd.to_datetime(frame["open_time"], unit="ms", utc=True)).drop(columns="open_time")
    assert candle_arrays(indexed).open_time.tolist() == [0, 60_000]
    with pytest.raises(CandleFileError):
        candle_arrays(frame.drop(columns="open_time"))


def test_the_main_series_loads_completely(shared_data) -> None:
    frame = load_candles(shared_data.main_series())
    assert len(frame) == 130_708
    assert (np.diff(frame["open_time"].to_numpy()) == 60_000).all()
