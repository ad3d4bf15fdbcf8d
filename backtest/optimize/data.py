"""The candles a study runs on: one file or series folder, or one series per ``--symbols`` entry.

``--data`` may be a candle CSV / Parquet file or series folder (its symbol is the one traded),
or a folder holding several: the Parquet store root ``research.data`` writes
(``symbol=X/interval=Y/``) or CSV files named ``<SYMBOL>_<interval>_...``; ``--symbols`` and
``--timeframe`` then pick the series.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from shared.candles import CandleFileError, candle_identity, load_candles
from shared.kline_store import is_store_path, partition_dir


def _series_path(folder: Path, symbol: str, timeframe: str) -> Path:
    partition = partition_dir(folder, symbol, timeframe)
    if partition.is_dir():
        return partition
    files = sorted(folder.glob(f"{symbol}_{timeframe}_*.csv*"))
    if not files:
        raise CandleFileError(
            f"{folder}: no {symbol} {timeframe} candles (neither {partition} nor {symbol}_{timeframe}_*.csv.gz)"
        )
    return files[-1]


def series_paths(path: str | Path, symbols: list[str], timeframe: str | None) -> dict[str, Path]:
    """The file or folder of each symbol's candles, without reading them; ``CandleFileError``
    names what is missing or does not match."""
    root = Path(path)
    single = root.is_file() or is_store_path(root)
    if single:
        symbol, interval = candle_identity(root)
        if symbols and symbols != [symbol]:
            raise CandleFileError(f"{root} holds {symbol} only, --symbols asks for {','.join(symbols)}")
        if timeframe and timeframe != interval:
            raise CandleFileError(f"{root} holds {interval} candles, --timeframe asks for {timeframe}")
        return {symbol: root}
    if root.is_dir():
        if not symbols:
            raise CandleFileError(f"{root} is a folder: name the series with --symbols (and --timeframe)")
        return {symbol: _series_path(root, symbol, timeframe or "1m") for symbol in symbols}
    raise CandleFileError(f"{root}: no such file or folder")


def load_data(path: str | Path, symbols: list[str], timeframe: str | None) -> dict[str, pd.DataFrame]:
    """Candles by symbol; ``CandleFileError`` names what is missing or does not match."""
    paths = series_paths(path, symbols, timeframe)
    data = {}
    for symbol, file in paths.items():
        frame = load_candles(file)
        if frame.empty:
            raise CandleFileError(f"{file}: no candles")
        data[symbol] = frame
    return data


def data_token(data: dict[str, pd.DataFrame]) -> str:
    """A short name of exactly these candles (the workers' indicator cache is keyed by it)."""
    digest = hashlib.sha256()
    for symbol, frame in data.items():
        times = frame["open_time"].to_numpy()
        digest.update(f"{symbol}:{frame.attrs.get('interval')}:{len(frame)}:{times[0]}:{times[-1]}".encode())
        digest.update(frame["close"].to_numpy().tobytes())
    return digest.hexdigest()[:16]
