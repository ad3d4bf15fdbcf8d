"""Candle files: loading, the fields Binance has and the CSV lacks, and kline rows.

A CSV file holds ``open_time,open,high,low,close,volume`` rows; symbol and interval come from the
file name (``<SYMBOL>_<interval>_...``). A Parquet month file or series folder of the candle store
(``shared.kline_store``) names its symbol and interval itself; its candles are turned into the
same rows, so both formats replay alike. Rows are kept as raw bytes and parsed on demand, so a
130,000-row file costs a few megabytes rather than a Decimal per number.

Derived deterministically (documented in docs/exchange_sim.md):

* quote volume = volume x (open + high + low + close) / 4
* number of trades = 0 for a zero-volume candle, else max(1, floor(quote volume / 500))
* taker buy base / quote volume = half of volume / quote volume
* trade ids run consecutively from 1 over the whole file (``f``/``L`` are -1 without trades)
"""

from __future__ import annotations

import gzip
import re
from array import array
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from shared import kline_store

from .decimals import fmt8, q8

# Binance's fixed-length intervals, 1s included. A copy of the bot's table (shared/intervals.py)
# on purpose: the simulator stands for the exchange and imports nothing of the bot, so a change
# to the bot's intervals cannot make the exchange it is tested against agree with it.
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
VALID_INTERVALS = frozenset(INTERVAL_MS) | {"1M"}
TRADE_NOTIONAL = 500
HEADER = b"open_time,open,high,low,close,volume"
_NAME = re.compile(r"^([A-Z0-9]+)_([0-9]+[smhdwM])_")


class DataError(ValueError):
    """A candle file cannot be used."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One source candle at its original (not re-based) open time."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def quote_volume(self) -> Decimal:
        return q8(self.volume * (self.open + self.high + self.low + self.close) / 4)


@dataclass(frozen=True, slots=True)
class KlineValues:
    """Everything a kline row or a kline stream payload shows, at re-based times."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    first_trade_id: int
    last_trade_id: int
    closed: bool

    def rest_row(self) -> list[object]:
        """The 12-field array of ``GET /api/v3/klines``."""
        return [
            self.open_time,
            fmt8(self.open),
            fmt8(self.high),
            fmt8(self.low),
            fmt8(self.close),
            fmt8(self.volume),
            self.close_time,
            fmt8(self.quote_volume),
            self.trades,
            fmt8(self.volume / 2),
            fmt8(self.quote_volume / 2),
            "0",
        ]

    def stream_payload(self, symbol: str, interval: str, event_time: int) -> dict[str, object]:
        """The ``<symbol>@kline_<interval>`` event (web-socket-streams.md)."""
        return {
            "e": "kline",
            "E": event_time,
            "s": symbol,
            "k": {
                "t": self.open_time,
                "T": self.close_time,
                "s": symbol,
                "i": interval,
                "f": self.first_trade_id,
                "L": self.last_trade_id,
                "o": fmt8(self.open),
                "c": fmt8(self.close),
                "h": fmt8(self.high),
                "l": fmt8(self.low),
                "v": fmt8(self.volume),
                "n": self.trades,
                "x": self.closed,
                "q": fmt8(self.quote_volume),
                "V": fmt8(self.volume / 2),
                "Q": fmt8(self.quote_volume / 2),
                "B": "0",
            },
        }


def parse_file_name(path: Path) -> tuple[str, str]:
    """``BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz`` -> ``("BTCUSDT", "1m")``."""
    match = _NAME.match(path.name)
    if not match or match.group(2) not in INTERVAL_MS:
        raise DataError(
            f"{path.name}: name must look like <SYMBOL>_<interval>_...csv[.gz] with a fixed-length interval"
        )
    return match.group(1), match.group(2)


def read_csv_rows(path: Path) -> tuple[str, str, list[bytes]]:
    """Symbol, interval and the data lines of a candle CSV (gzip or plain)."""
    symbol, interval = parse_file_name(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    lines = raw.replace(b"\r", b"").split(b"\n")
    if not lines or lines[0].strip() != HEADER:
        raise DataError(f"{path.name}: header must be {HEADER.decode()}")
    return symbol, interval, [line for line in lines[1:] if line.strip()]


def read_store_rows(path: Path) -> tuple[str, str, list[bytes]]:
    """Symbol, interval and CSV-like data lines of a Parquet month file or series folder."""
    try:
        symbol, interval, table = kline_store.read_series(path)
    except kline_store.KlineStoreError as exc:
        raise DataError(str(exc)) from None
    if interval not in INTERVAL_MS:
        raise DataError(f"{path.name}: interval {interval} has no fixed length")
    columns = [[str(t) for t in table.column("open_time").to_pylist()]]
    columns += [kline_store.decimal_texts(table.column(name)) for name in ("open", "high", "low", "close", "volume")]
    return symbol, interval, [",".join(values).encode() for values in zip(*columns, strict=True)]


class Series:
    """The candles of one file (or Parquet folder), parsed lazily, plus per-candle trade counts and ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        reader = read_store_rows if kline_store.is_store_path(path) else read_csv_rows
        self.symbol, self.interval, self._rows = reader(path)
        self.interval_ms = INTERVAL_MS[self.interval]
        if not self._rows:
            raise DataError(f"{path.name}: no candles")
        self.open_times = array("q")
        self.trades = array("q")
        self.first_ids = array("q")
        self.price_decimals = 0
        next_id = 1
        for number, line in enumerate(self._rows, start=2):
            parts = line.split(b",")
            try:
                open_time = int(parts[0])
                o, h, low, c, v = (float(x) for x in parts[1:6])
            except (ValueError, IndexError):
                raise DataError(f"{path.name}: line {number} is not a candle") from None
            if self.open_times and open_time <= self.open_times[-1]:
                raise DataError(f"{path.name}: line {number} is not after the previous candle")
            self.open_times.append(open_time)
            count = 0 if v <= 0 else max(1, int(v * (o + h + low + c) / 4 / TRADE_NOTIONAL))
            self.trades.append(count)
            self.first_ids.append(next_id if count else -1)
            next_id += count
            for text in parts[1:5]:
                if b"." in text and b"e" not in text.lower():
                    self.price_decimals = max(self.price_decimals, len(text.split(b".")[1].rstrip(b"0")))
        self.first_price = self.candle(0).open

    def __len__(self) -> int:
        return len(self._rows)

    def candle(self, index: int) -> Candle:
        """Parse row ``index`` (0-based, oldest first)."""
        parts = self._rows[index].decode().split(",")
        return Candle(int(parts[0]), *(Decimal(x) for x in parts[1:6]))

    def closed_values(self, index: int, offset_ms: int) -> KlineValues:
        """The finished candle ``index`` at re-based time (open time + ``offset_ms``)."""
        return self.partial_values(index, offset_ms, self.candle(index), None, None, None, 1, 1, True)

    def partial_values(
        self,
        index: int,
        offset_ms: int,
        candle: Candle,
        high: Decimal | None,
        low: Decimal | None,
        price: Decimal | None,
        done: int,
        of: int,
        closed: bool,
    ) -> KlineValues:
        """Values of candle ``index`` after ``done/of`` of its walk; volume and trades grow linearly."""
        open_time = candle.open_time + offset_ms
        trades = self.trades[index] * done // of
        first = self.first_ids[index] if trades else -1
        return KlineValues(
            open_time=open_time,
            close_time=open_time + self.interval_ms - 1,
            open=candle.open,
            high=candle.high if high is None else high,
            low=candle.low if low is None else low,
            close=candle.close if price is None else price,
            volume=q8(candle.volume * done / of),
            quote_volume=q8(candle.quote_volume * done / of),
            trades=trades,
            first_trade_id=first,
            last_trade_id=first + trades - 1 if trades else -1,
            closed=closed,
        )


def aggregate(parts: list[KlineValues], open_time: int, interval_ms: int, closed: bool) -> KlineValues:
    """Merge consecutive klines into one of a longer interval starting at ``open_time``."""
    traded = [p for p in parts if p.trades]
    return KlineValues(
        open_time=open_time,
        close_time=open_time + interval_ms - 1,
        open=parts[0].open,
        high=max(p.high for p in parts),
        low=min(p.low for p in parts),
        close=parts[-1].close,
        volume=sum((p.volume for p in parts), Decimal(0)),
        quote_volume=sum((p.quote_volume for p in parts), Decimal(0)),
        trades=sum(p.trades for p in parts),
        first_trade_id=traded[0].first_trade_id if traded else -1,
        last_trade_id=traded[-1].last_trade_id if traded else -1,
        closed=closed,
    )
