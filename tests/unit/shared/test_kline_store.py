"""The Parquet candle store: exact decimals, merging without duplicates, identity, atomic writes."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shared import kline_store
from shared.candles import CandleFileError, candle_identity, load_candles
from tests.support.shared_data import SharedData

MIN = 60_000
T0 = 1_704_067_200_000


def row(i: int, close: str = "42005.00000000", quote: str = "123456789.12345678") -> list[object]:
    t = T0 + i * MIN
    return [
        t,
        "42000.01000000",
        "42010.00000000",
        "41990.00000000",
        close,
        "0.00000001",
        t + MIN - 1,
        quote,
        7,
        "0.00000000",
        "61728394.56172839",
        "0",
    ]


def test_rows_keep_every_decimal_exactly() -> None:
    table = kline_store.table_from_rows([row(1), row(0)])
    assert table.column("open_time").to_pylist() == [T0, T0 + MIN]  # sorted
    assert table.column("quote_volume")[0].as_py() == Decimal("123456789.12345678")  # beyond float64
    assert kline_store.decimal_texts(table.column("volume")) == ["0.00000001", "0.00000001"]  # never 1E-8
    with pytest.raises(kline_store.KlineStoreError, match="close"):
        kline_store.table_from_rows([row(0, close="1.000000001")])  # 9 decimals: refused, not rounded
    with pytest.raises(kline_store.KlineStoreError, match="quote_volume"):
        kline_store.table_from_rows([row(0, quote="abc")])
    with pytest.raises(kline_store.KlineStoreError, match="share an open time"):
        kline_store.table_from_rows([row(0), row(0)])


def test_merge_keeps_stored_candles_and_never_duplicates() -> None:
    stored = kline_store.table_from_rows([row(0), row(1)])
    new = kline_store.table_from_rows([row(1, close="1.00000000"), row(2)])
    merged = kline_store.merge(stored, new)
    assert merged.column("open_time").to_pylist() == [T0, T0 + MIN, T0 + 2 * MIN]
    assert merged.column("close")[1].as_py() == Decimal(42005)


def test_month_files_name_themselves_and_are_replaced_atomically(tmp_path: Path) -> None:
    path = kline_store.month_path(tmp_path, "BTCUSDT", "1m", "2024-01")
    assert path == tmp_path / "symbol=BTCUSDT" / "interval=1m" / "month=2024-01" / "klines.parquet"
    kline_store.write_month(
        path, kline_store.table_from_rows([row(0)]), symbol="BTCUSDT", interval="1m", coverage=[(T0, T0 + MIN)]
    )
    kline_store.write_month(
        path,
        kline_store.table_from_rows([row(0), row(1)]),
        symbol="BTCUSDT",
        interval="1m",
        coverage=[(T0, T0 + 2 * MIN)],
    )
    assert [p.name for p in path.parent.iterdir()] == ["klines.parquet"]  # no temporary file left
    month = kline_store.read_month(path)
    assert (month.symbol, month.interval, month.coverage, month.table.num_rows) == (
        "BTCUSDT",
        "1m",
        ((T0, T0 + 2 * MIN),),
        2,
    )
    copied = tmp_path / "elsewhere.parquet"
    copied.write_bytes(path.read_bytes())
    assert candle_identity(copied) == ("BTCUSDT", "1m")  # the metadata, not the folder, says what it is
    assert candle_identity(tmp_path / "symbol=BTCUSDT") == ("BTCUSDT", "1m")
    other = kline_store.month_path(tmp_path, "ETHUSDT", "1m", "2024-01")
    kline_store.write_month(other, kline_store.table_from_rows([row(0)]), symbol="ETHUSDT", interval="1m", coverage=[])
    with pytest.raises(CandleFileError, match=r"several series.*BTCUSDT 1m, ETHUSDT 1m"):
        load_candles(tmp_path / "symbol=BTCUSDT" / "..")
    with pytest.raises(CandleFileError, match="no such file or folder"):
        load_candles(tmp_path / "missing.parquet")


def test_floats_from_the_store_equal_the_csv_reader_on_a_real_series(tmp_path: Path) -> None:
    """Every number of the 130,708-candle file: the CSV text stored as decimals loads to the same
    float64 arrays as the CSV."""
    source = SharedData().main_series()
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()[1:]
    rows = []
    for line in lines:
        t, o, h, low, c, v = line.split(",")
        rows.append([int(t), o, h, low, c, v, int(t) + MIN - 1, "0", 0, "0", "0", "0"])
    table = kline_store.table_from_rows(rows)
    folder = tmp_path / "store"
    for month in sorted({pd.Timestamp(r[0], unit="ms").strftime("%Y-%m") for r in rows}):
        start = pd.Timestamp(f"{month}-01", tz="UTC").value // 1_000_000
        end = (pd.Timestamp(f"{month}-01", tz="UTC") + pd.offsets.MonthBegin(1)).value // 1_000_000
        times = table.column("open_time").to_numpy()
        part = table.filter(pa.array((times >= start) & (times < end)))
        kline_store.write_month(
            kline_store.month_path(folder, "BTCUSDT", "1m", month),
            part,
            symbol="BTCUSDT",
            interval="1m",
            coverage=[(start, end)],
        )
    from_csv, from_store = load_candles(source), load_candles(folder / "symbol=BTCUSDT" / "interval=1m")
    assert len(from_store) == len(from_csv) == 130_708
    for name in from_csv.columns:
        assert np.array_equal(from_store[name].to_numpy(), from_csv[name].to_numpy()), name
    assert from_store.attrs["symbol"] == "BTCUSDT" and from_store.attrs["interval"] == "1m"
