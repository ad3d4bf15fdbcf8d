"""Reading what a replay produced, and what the backtester says it should have produced."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.config import BacktestConfig
from backtest.engine import Trade, run_backtest
from shared import streams
from shared.candles import shared_data_dir
from shared.parameters import StrategyParameters
from shared.trading.ids import is_protection_id
from shared.trading.protection import ExitReason

MINUTE = 60_000
ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = shared_data_dir()
BUNDLED = {
    "BTCUSDT": ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz",
    "ETHUSDT": ROOT / "data" / "ETHUSDT_1m_2025-05-20_2025-05-27.csv.gz",
}
# Each replayed market: real candles and the row the replay starts at. Two are other periods of
# real series traded under other names, so four markets move independently.
REPLAYS = {
    "BTCUSDT": (BUNDLED["BTCUSDT"], 2500),
    "ETHUSDT": (BUNDLED["ETHUSDT"], 2500),
    "SOLUSDT": (SHARED_DATA / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz", 82500),
    "BNBUSDT": (SHARED_DATA / "BTCUSDT_1m_2023-03-16_2023-05-01.csv.gz", 2500),
}


@dataclass(frozen=True)
class TradeKey:
    """A trade as candles: entry and exit candle indices in the replayed file, and the reason."""

    entry: int
    exit: int | None
    reason: str


def first_open_time(client, symbol: str) -> int:
    """Replay time of the file's first candle (the oldest closed kline in the stream)."""
    entries = client.xrange(streams.kline_stream(symbol), count=1)
    return int(entries[0][1]["open_time_ms"])


def replayed_trades(database: Path, symbol: str, first_open: int) -> list[TradeKey]:
    """Every position of ``symbol`` in the executor's database, as candle indices."""
    return [key for key, _ in _positions(database, symbol, first_open)]


def entry_fills(database: Path, symbol: str, first_open: int) -> dict[int, Decimal]:
    """Average entry fill price of each position of ``symbol``, by entry candle index."""
    return {key.entry: price for key, price in _positions(database, symbol, first_open) if price is not None}


def leg_exits(database: Path, symbol: str, first_open: int) -> dict[int, tuple[str, Decimal]]:
    """Exit reason and average exit price of each closed position of ``symbol`` that a leg of its
    OCO sold (``PROTECTION=exchange``), by entry candle index."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT entry_candle_open_ms, exit_reason, exit_price, exit_client_order_id FROM positions"
            " WHERE symbol = ? AND status = 'CLOSED'",
            (symbol,),
        ).fetchall()
    return {
        (entry - first_open) // MINUTE: (reason, Decimal(str(price)))
        for entry, reason, price, exit_id in rows
        if exit_id is not None and is_protection_id(exit_id)
    }


def _positions(database: Path, symbol: str, first_open: int) -> list[tuple[TradeKey, Decimal | None]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT entry_candle_open_ms, exit_candle_open_ms, exit_reason, status, entry_price FROM positions"
            " WHERE symbol = ? ORDER BY id",
            (symbol,),
        ).fetchall()
    positions = []
    for entry, exit_, reason, status, price in rows:
        key = TradeKey(
            (entry - first_open) // MINUTE,
            None if status != "CLOSED" else (exit_ - first_open) // MINUTE,
            reason if status == "CLOSED" else "open",
        )
        positions.append((key, None if price is None else Decimal(str(price))))
    return positions


def backtest_trades(
    frame: pd.DataFrame,
    params: StrategyParameters,
    first_live: int,
    entry_prices: dict[int, Decimal] | None = None,
    strategy: Any = None,
    strategy_params: Any = None,
    config: BacktestConfig | None = None,
) -> list[Trade]:
    """The backtester's trades (``expected_trades``) that start once the replay is live."""
    result = run_backtest(
        frame.reset_index(drop=True),
        params,
        config,
        entry_prices=entry_prices,
        strategy=strategy,
        strategy_params=strategy_params,
    )
    return [trade for trade in result.trades if trade.entry_index >= first_live]


def expected_trades(
    frame: pd.DataFrame,
    params: StrategyParameters,
    first_live: int,
    entry_prices: dict[int, Decimal] | None = None,
    strategy: Any = None,
    strategy_params: Any = None,
    config: BacktestConfig | None = None,
) -> list[TradeKey]:
    """The backtester's trades that start once the replay is live (after the warm-up history).

    A live entry fills at the first price the exchange has when the order arrives: the close of
    the signal candle, the next candle's open, or, when the order is slow, a later step of that
    candle. Its stop-loss and take-profit follow that fill, so ``entry_prices`` (the live fills)
    replace the close for those entries; every decision is still the backtester's own. ``config``
    carries the executor's ``PROTECTION``.
    """
    keys = []
    for trade in backtest_trades(frame, params, first_live, entry_prices, strategy, strategy_params, config):
        if trade.exit_reason == ExitReason.END:
            keys.append(TradeKey(trade.entry_index, None, "open"))
        else:
            keys.append(TradeKey(trade.entry_index, trade.exit_index, trade.exit_reason.value))
    return keys
