"""Loading of the project's candles: CSV files and the Parquet store.

CSV file names follow ``<SYMBOL>_<interval>_<first day>_<last day>.csv[.gz]``, with the columns
``open_time,open,high,low,close,volume``; the symbol and interval are read from the name. The
Parquet store (``shared.kline_store``, written by ``python -m research.data``) is read from a
``.parquet`` month file or a folder holding one series; it names its symbol and interval itself.
``open_time`` is the candle open time in epoch milliseconds UTC, prices are in the quote asset,
volume in the base asset. The numbers are parsed exactly (decimal text -> the nearest float64),
so a series loads to the same arrays from either format.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared import intervals, kline_store

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
_NAME_PATTERN = re.compile(r"^(?P<symbol>[A-Z0-9]+)_(?P<interval>\d+[smhdwM])(?:_|\.|$)")


class CandleFileError(ValueError):
    """A candle file is missing, badly named or has unexpected content."""


@dataclass(frozen=True)
class CandleArrays:
    """The columns of a candle series as contiguous numpy arrays (float64, ``open_time`` int64 ms)."""

    open_time: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.close)


def parse_file_name(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Return ``(symbol, interval)`` from a name like ``BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz``."""
    match = _NAME_PATTERN.match(Path(path).name)
    if match is None:
        raise CandleFileError(f"{Path(path).name}: expected a name like BTCUSDT_1m_<from>_<to>.csv.gz")
    return match["symbol"], match["interval"]


def interval_ms(interval: str) -> int:
    """Length of a Binance interval such as ``1m``, ``5m``, ``1h``, ``1d`` in milliseconds."""
    try:
        return intervals.interval_ms(interval)
    except ValueError as e:
        raise CandleFileError(str(e)) from None


def candle_identity(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(symbol, interval)`` of a candle CSV (from its name) or of a Parquet file or folder."""
    if kline_store.is_store_path(path):
        try:
            return kline_store.series_identity(path)
        except kline_store.KlineStoreError as e:
            raise CandleFileError(str(e)) from None
    return parse_file_name(path)


def load_candles(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read candles into a DataFrame: a CSV (gzip or plain, chosen by suffix), a ``.parquet``
    month file, or a Parquet folder holding one series (every month file below it).

    Columns: ``open_time`` (int64 epoch ms) and ``open, high, low, close, volume`` (float64),
    on a RangeIndex. ``frame.attrs`` carries ``symbol``, ``interval`` and ``path``.
    Rows must be strictly increasing in time; anything else raises ``CandleFileError``.
    """
    if kline_store.is_store_path(path):
        return _load_store(path)
    file = Path(path)
    if not file.is_file():
        raise CandleFileError(f"{file}: no such file")
    symbol, interval = parse_file_name(file)
    dtypes = {"open_time": "int64", **dict.fromkeys(CANDLE_COLUMNS[1:], "float64")}
    try:
        frame = pd.read_csv(file, usecols=list(CANDLE_COLUMNS), dtype=dtypes)
    except ValueError as e:
        raise CandleFileError(f"{file}: {e}") from e
    frame = frame[list(CANDLE_COLUMNS)]
    times = frame["open_time"].to_numpy()
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        raise CandleFileError(f"{file}: open_time must be strictly increasing")
    frame.attrs.update(symbol=symbol, interval=interval, path=str(file))
    return frame


def _load_store(path: str | os.PathLike[str]) -> pd.DataFrame:
    try:
        symbol, interval, table = kline_store.read_series(path)
    except kline_store.KlineStoreError as e:
        raise CandleFileError(str(e)) from None
    columns: dict[str, npt.NDArray[Any]] = {"open_time": table.column("open_time").to_numpy().astype(np.int64)}
    for name in CANDLE_COLUMNS[1:]:
        columns[name] = kline_store.float_column(table.column(name)).to_numpy()
    frame = pd.DataFrame(columns)
    frame.attrs.update(symbol=symbol, interval=interval, path=str(path))
    return frame


def candle_arrays(frame: pd.DataFrame) -> CandleArrays:
    """Contiguous numpy views of a candle DataFrame.

    ``open_time`` comes from the ``open_time`` column (epoch ms) or, failing that, from a
    DatetimeIndex.
    """
    if "open_time" in frame.columns:
        open_time = frame["open_time"].to_numpy(dtype=np.int64)
    elif isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index if frame.index.tz is None else frame.index.tz_convert("UTC").tz_localize(None)
        open_time = index.as_unit("ms").asi8.astype(np.int64)
    else:
        raise CandleFileError("candles need an open_time column (epoch ms) or a DatetimeIndex")
    columns = {name: np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64)) for name in CANDLE_COLUMNS[1:]}
    return CandleArrays(open_time=np.ascontiguousarray(open_time), **columns)


def shared_data_dir() -> Path:
    """Folder of the public candle set: ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``."""
    override = os.environ.get("SHARED_DATA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
