"""``ENTRY_ORDER=limit_maker`` replayed: simulator -> market_data -> strategy -> executor with every
entry a LIMIT_MAKER at the best bid, filled by the simulator's walk at most
``EXCHANGE_SIM_MAKER_FILL_QUOTE`` of quote per step, so entries fill in parts over several steps
and candles, some are cancelled at their timeout with what filled. The backtester with the same
``MAKER_FILL_QUOTE`` makes the same trades, trade for trade: the same signal candles, the same
exit candles and reasons, and each position of the size that filled.

As the market replays give the backtester the live entry fills, this one gives it what only the
live run can know of each limit entry (``backtest.limit_entries.LimitOrder``): the price it was
placed at (the ledger's ``limit_price``, from the bid when it landed), how many walk steps had
passed when it landed (the simulator's order time) and the quantity it was sized to. Whether it
fills, in how many parts, on which candle the position opens, and how it ends, is the
backtester's own walk.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.config import parse_run_settings
from backtest.engine import run_backtest
from backtest.limit_entries import LimitOrder
from shared.trading.protection import ExitReason
from shared.trading.walk import step_due, substeps
from tests.pipeline.ledger import BUNDLED, MINUTE, TradeKey, first_open_time
from tests.pipeline.test_replay import HISTORY, RISK, run_replay
from tests.support.stack import Stack, start_stack  # noqa: F401 - makes it a replay module (tests/conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MAKER_FILL_QUOTE = "3000"  # a ~9,000 USDT entry fills in three steps or more
LIMIT_ENV = {
    "ENTRY_ORDER": "limit_maker",
    "ENTRY_LIMIT_OFFSET_PERCENTAGE": "0",
    "ENTRY_LIMIT_TIMEOUT_CANDLES": "2",
    "EXCHANGE_SIM_MAKER_FILL_QUOTE": MAKER_FILL_QUOTE,
}
SETTINGS = " ".join(f"{k}={v}" for k, v in {**RISK, **LIMIT_ENV}.items() if not k.startswith("EXCHANGE_SIM"))
SPEED = 120
# BTCUSDT from row 1700, 70 live candles: a limit entry filled in parts within its first candle,
# one cancelled at its timeout with a third filled (a position of that size).
SHORT, SHORT_ROWS = {"BTCUSDT": (BUNDLED["BTCUSDT"], 1700)}, 140
LONG, LONG_ROWS = {"BTCUSDT": (BUNDLED["BTCUSDT"], 2900)}, 300


def live_limit_orders(stack: Stack, symbol: str, first_open: int) -> dict[int, LimitOrder]:
    """Each limit entry of the ledger by signal candle index: its price, quantity and the walk
    steps the simulator had walked when it landed (by the order's exchange time)."""
    with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
        rows = connection.execute(
            "SELECT o.client_order_id, o.limit_price, o.requested_quantity, p.entry_candle_open_ms FROM orders o"
            " JOIN positions p ON p.id = o.position_id WHERE o.symbol = ? AND o.order_type = 'LIMIT_MAKER'"
            " AND o.purpose = 'entry'",
            (symbol,),
        ).fetchall()
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/state", timeout=10) as response:
        placed = {o["clientOrderId"]: int(o["time"]) for o in json.loads(response.read())["orders"]}
    n = substeps(MINUTE, SPEED)
    orders = {}
    for client_id, price, quantity, candle_ms in rows:
        origin = (candle_ms - first_open) // MINUTE
        landed = placed[client_id]
        walked = 0  # steps of candles origin+1, origin+2, ... due by the time it landed
        candle = candle_ms + MINUTE
        while step_due(candle, MINUTE, 0, n) <= landed:
            walked += sum(1 for s in range(4 * n + 1) if step_due(candle, MINUTE, s, n) <= landed)
            candle += MINUTE
        orders[origin] = LimitOrder(Decimal(price), walked, Decimal(quantity))
    return orders


def ledger_trades(stack: Stack, symbol: str, first_open: int) -> list[tuple[TradeKey, Decimal]]:
    """Positions that opened (a FAILED entry never did), by signal candle, with their quantity."""
    with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
        rows = connection.execute(
            "SELECT p.entry_candle_open_ms, p.exit_candle_open_ms, p.exit_reason, p.status, o.executed_quantity"
            " FROM positions p JOIN orders o ON o.client_order_id = p.entry_client_order_id"
            " WHERE p.symbol = ? AND p.status != 'FAILED' ORDER BY p.id",
            (symbol,),
        ).fetchall()
    return [
        (
            TradeKey(
                (entry - first_open) // MINUTE,
                None if status != "CLOSED" else (exit_ - first_open) // MINUTE,
                reason if status == "CLOSED" else "open",
            ),
            Decimal(quantity),
        )
        for entry, exit_, reason, status, quantity in rows
    ]


def backtested(stack: Stack, symbol: str, replays, rows: int) -> tuple[list[tuple[TradeKey, Decimal]], list]:
    from tests.pipeline.test_replay import replay_frame

    first = first_open_time(stack.client(), symbol)
    params, config = parse_run_settings(f"{SETTINGS} MAKER_FILL_QUOTE={MAKER_FILL_QUOTE}", symbol=symbol)
    frame = replay_frame(symbol, replays, rows).reset_index(drop=True)
    result = run_backtest(frame, params, config, limit_orders=live_limit_orders(stack, symbol, first))
    trades = [t for t in result.trades if t.signal_index is not None and t.signal_index >= HISTORY]
    keys = [
        (
            TradeKey(t.signal_index, None, "open")
            if t.exit_reason == ExitReason.END
            else TradeKey(t.signal_index, t.exit_index, t.exit_reason.value),
            t.quantity,
        )
        for t in trades
        if t.signal_index is not None
    ]
    return keys, trades


def assert_parity(stack: Stack, symbol: str, replays, rows: int) -> list:
    first = first_open_time(stack.client(), symbol)
    live = ledger_trades(stack, symbol, first)
    expected, trades = backtested(stack, symbol, replays, rows)
    assert live == expected, stack.logs("executor")[-4000:]
    return trades


def test_replay_with_limit_entries_filled_in_parts_matches_the_backtest(tmp_path: Path) -> None:
    stack, _, _ = run_replay(tmp_path, ["BTCUSDT"], env=LIMIT_ENV, speed=SPEED, replays=SHORT, rows=SHORT_ROWS)
    try:
        trades = assert_parity(stack, "BTCUSDT", SHORT, SHORT_ROWS)
        assert len(trades) >= 2
        assert any(t.entry_index > t.signal_index + 1 for t in trades)  # rested beyond its first candle
        ended = entry_outcomes(stack, "BTCUSDT")
        assert ("FILLED", True) in ended and ("CANCELED", True) in ended, ended  # in parts; part filled
    finally:
        stack.stop_all()


def entry_outcomes(stack: Stack, symbol: str) -> set[tuple[str, bool]]:
    """How each limit entry ended, and whether it filled in several trades (CANCELED: partly)."""
    with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
        rows = connection.execute(
            "SELECT o.status, COUNT(f.id), o.executed_quantity, o.requested_quantity FROM orders o"
            " LEFT JOIN fills f ON f.client_order_id = o.client_order_id"
            " WHERE o.symbol = ? AND o.order_type = 'LIMIT_MAKER' AND o.purpose = 'entry' GROUP BY o.id",
            (symbol,),
        ).fetchall()
    return {
        (status, fills > 1 if status == "FILLED" else 0 < Decimal(done) < Decimal(asked))
        for status, fills, done, asked in rows
    }


@pytest.mark.long
@pytest.mark.timeout(600)
def test_a_longer_replay_with_limit_entries_matches_the_backtest(tmp_path: Path) -> None:
    stack, _, _ = run_replay(tmp_path, ["BTCUSDT"], env=LIMIT_ENV, speed=SPEED, replays=LONG, rows=LONG_ROWS)
    try:
        trades = assert_parity(stack, "BTCUSDT", LONG, LONG_ROWS)
        assert len(trades) >= 4
    finally:
        stack.stop_all()
