"""Candles stored as Parquet: one file per symbol, interval and UTC month.

Layout (Hive-style partitions, readable as one dataset by pyarrow, pandas, Dask or DuckDB)::

    <root>/symbol=BTCUSDT/interval=1m/month=2024-01/klines.parquet

Each file holds the fields of Binance's kline rows, oldest first, one row per open time:
``open_time`` and ``close_time`` (int64 epoch ms UTC), ``trades`` (int64) and the prices and
volumes as ``decimal128(38, 8)``, exactly the 8-decimal text Binance sends (a float64 cannot hold
every quote volume exactly). The file's metadata names its ``symbol`` and ``interval`` (so a file
copied elsewhere still says what it is) and its ``coverage``: the open-time ranges that were
fetched completely, as JSON ``[[start_ms, end_ms), ...]``. A candle missing inside the coverage
is one the exchange does not have (a gap); outside it, one nobody fetched yet.

Only pyarrow and the standard library: the simulator reads these files too.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DECIMAL = pa.decimal128(38, 8)
DECIMAL_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)
# The order of Binance's 12-field kline rows, without the unused last field.
FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)
SCHEMA = pa.schema([(name, DECIMAL if name in DECIMAL_FIELDS else pa.int64()) for name in FIELDS])
FILE_NAME = "klines.parquet"
_MONTH = re.compile(r"^\d{4}-\d{2}$")

Span = tuple[int, int]


class KlineStoreError(ValueError):
    """A Parquet candle file or folder cannot be used; the message names it."""


@dataclass(frozen=True)
class MonthFile:
    """One stored month of one symbol and interval."""

    path: Path
    symbol: str
    interval: str
    table: pa.Table
    coverage: tuple[Span, ...]


def is_store_path(path: str | os.PathLike[str]) -> bool:
    """True for a ``.parquet`` file or a folder (a partition of the store); False for CSV files."""
    target = Path(path)
    return target.is_dir() or target.suffix == ".parquet"


def partition_dir(root: str | os.PathLike[str], symbol: str, interval: str) -> Path:
    """``<root>/symbol=<SYMBOL>/interval=<interval>``: every month of one series."""
    return Path(root) / f"symbol={symbol}" / f"interval={interval}"


def month_path(root: str | os.PathLike[str], symbol: str, interval: str, month: str) -> Path:
    """The file of ``month`` (``YYYY-MM``, UTC) of one series."""
    if not _MONTH.match(month):
        raise KlineStoreError(f"month must look like 2024-01, got {month!r}")
    return partition_dir(root, symbol, interval) / f"month={month}" / FILE_NAME


def table_from_rows(rows: Sequence[Sequence[object]]) -> pa.Table:
    """Binance kline rows (12 fields, numbers as text or int) as a table of ``SCHEMA``, sorted.

    A value that is not a number, or has more than 8 decimals, raises KlineStoreError naming
    the field: nothing is rounded silently.
    """
    columns: dict[str, pa.Array] = {}
    for index, name in enumerate(FIELDS):
        values = [row[index] for row in rows]
        try:
            if name in DECIMAL_FIELDS:
                columns[name] = pa.array([str(v) for v in values], pa.string()).cast(DECIMAL)
            else:
                columns[name] = pa.array([int(v) for v in values], pa.int64())  # type: ignore[call-overload]  # else TypeError
        except (pa.ArrowInvalid, TypeError, ValueError) as e:
            raise KlineStoreError(f"kline field {name}: {e}") from None
    return sort_unique(pa.table(columns, schema=SCHEMA))


def sort_unique(table: pa.Table) -> pa.Table:
    """Sorted by open time; a repeated open time raises (a source never sends one twice)."""
    table = table.sort_by("open_time")
    times = table.column("open_time").to_numpy()
    if len(times) > 1 and not bool((times[1:] > times[:-1]).all()):
        raise KlineStoreError("two candles share an open time")
    return table


def merge(existing: pa.Table | None, new: pa.Table) -> pa.Table:
    """Union by open time; a candle already stored is kept as it is (never duplicated)."""
    if existing is None or existing.num_rows == 0:
        return sort_unique(new)
    fresh = new.filter(pc.invert(pc.is_in(new.column("open_time"), value_set=existing.column("open_time"))))
    return sort_unique(pa.concat_tables([existing.cast(SCHEMA), fresh.cast(SCHEMA)]))


def read_month(path: str | os.PathLike[str]) -> MonthFile:
    """One month file with its identity and coverage."""
    file = Path(path)
    try:
        table = pq.read_table(file, schema=SCHEMA)
        meta = pq.read_schema(file).metadata or {}
    except (OSError, pa.ArrowInvalid) as e:
        raise KlineStoreError(f"{file}: not a candle Parquet file ({e})") from None
    symbol, interval = _identity(file, meta)
    try:
        coverage = tuple((int(a), int(b)) for a, b in json.loads(meta.get(b"coverage", b"[]")))
    except (ValueError, TypeError) as e:
        raise KlineStoreError(f"{file}: unreadable coverage metadata ({e})") from None
    return MonthFile(file, symbol, interval, table, coverage)


def write_month(
    path: str | os.PathLike[str], table: pa.Table, *, symbol: str, interval: str, coverage: Iterable[Span]
) -> Path:
    """Write a month file atomically (temporary file, fsync, rename): a reader, or a run killed
    half-way, sees the old file or the new one, never part of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        b"symbol": symbol.encode(),
        b"interval": interval.encode(),
        b"coverage": json.dumps([list(span) for span in coverage]).encode(),
    }
    table = sort_unique(table.cast(SCHEMA)).replace_schema_metadata(metadata)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            pq.write_table(table, file, compression="zstd")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def month_files(path: str | os.PathLike[str]) -> list[Path]:
    """The month files of one series under ``path`` (a file, a series folder or the store root),
    oldest first; a folder holding several symbols or intervals raises, naming them."""
    target = Path(path)
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise KlineStoreError(f"{target}: no such file or folder")
    files = sorted(p for p in target.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise KlineStoreError(f"{target}: no Parquet candle files in this folder")
    series = {_identity(p, pq.read_schema(p).metadata or {}) for p in files}
    if len(series) > 1:
        names = ", ".join(f"{s} {i}" for s, i in sorted(series))
        raise KlineStoreError(f"{target}: holds several series ({names}); name one of their folders")
    return sorted(files, key=lambda p: p.parent.name)


def series_identity(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(symbol, interval)`` of the series stored at ``path``."""
    first = month_files(path)[0]
    return _identity(first, pq.read_schema(first).metadata or {})


def read_series(path: str | os.PathLike[str]) -> tuple[str, str, pa.Table]:
    """Every stored candle of one series, oldest first, as ``(symbol, interval, table)``."""
    months = [read_month(p) for p in month_files(path)]
    table = sort_unique(pa.concat_tables([m.table for m in months]))
    return months[0].symbol, months[0].interval, table


def decimal_texts(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """Plain decimal text of a decimal column (Arrow writes values below 1e-6 as ``1E-8``)."""
    texts = column.cast(pa.string()).to_pylist()
    return [t if "E" not in t else format(Decimal(t), "f") for t in texts]


def float_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A decimal column as float64, each value correctly rounded (through its exact text: Arrow's
    direct decimal-to-double cast is off by one unit in the last place for about 1 value in 8)."""
    return column.cast(pa.string()).cast(pa.float64())


def _identity(file: Path, meta: dict[bytes, bytes]) -> tuple[str, str]:
    symbol, interval = meta.get(b"symbol"), meta.get(b"interval")
    if symbol and interval:
        return symbol.decode(), interval.decode()
    parts = dict(p.split("=", 1) for p in (file.parent.parent.name, file.parent.parent.parent.name) if "=" in p)
    if "symbol" in parts and "interval" in parts:
        return parts["symbol"], parts["interval"]
    raise KlineStoreError(f"{file}: names no symbol and interval (metadata or symbol=/interval= folders)")
