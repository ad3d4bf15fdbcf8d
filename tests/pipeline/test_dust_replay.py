"""The bot's fee dust in a live replay: the buy commission is taken in BTC, every exit sells the
position with the dust earlier exits left, so after many trades the account holds at most one
step of BTC beyond the open position, and the ledger says exactly how much of it is the bot's."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from shared import streams
from tests.pipeline.ledger import BUNDLED, MINUTE
from tests.support.drain import groups_drained
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS, HISTORY, SPEED, START = 300, 70, 240, 2500
STEP = Decimal("0.00001")
ENV = {
    "STOP_LOSS_PERCENTAGE": "0.0015",
    "TAKE_PROFIT_PERCENTAGE": "0.002",
    "SIGNAL_MAX_LAG_CANDLES": "12",
    "EMA_SHORT_PERIOD": "3",
    "EMA_LONG_PERIOD": "8",
    "USE_EMA_FILTER": "false",
}


def replay_done(stack: Stack) -> bool:
    client = stack.client()
    last = client.hget(streams.KLINE_LAST_OPEN, "BTCUSDT")
    first = client.xrange(streams.kline_stream("BTCUSDT"), count=1)
    if not (last and first) or (int(last) - int(first[0][1]["open_time_ms"])) // MINUTE < ROWS - 2:
        return False
    for stream in (streams.executor_inbox("BTCUSDT"), streams.ticker_stream("BTCUSDT")):
        if not groups_drained(client, stream):
            return False
    return True


def btc_balance(stack: Stack) -> Decimal:
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/state", timeout=10) as response:
        balances = json.loads(response.read())["balances"]
    btc = balances.get("BTC", {"free": "0", "locked": "0"})
    if isinstance(btc, dict):
        return Decimal(str(btc.get("free", "0"))) + Decimal(str(btc.get("locked", "0")))
    return Decimal(str(btc))


def test_many_trades_leave_at_most_one_step_of_dust(tmp_path: Path) -> None:
    data = [prepare_data(tmp_path, BUNDLED["BTCUSDT"], "BTCUSDT", START, ROWS)]
    stack = start_stack(tmp_path / "stack", data=data, symbols=["BTCUSDT"], speed=SPEED, history=HISTORY, extra_env=ENV)
    try:
        stack.wait_for(lambda: replay_done(stack), 200, "the end of the replay")
        time.sleep(1.0)
        with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
            rows = connection.execute(
                "SELECT status, quantity, dust_in, dust_out, entry_market_time_ms, exit_market_time_ms,"
                " entry_candle_open_ms FROM positions WHERE symbol = 'BTCUSDT' AND status != 'FAILED' ORDER BY id"
            ).fetchall()
            fills = connection.execute("SELECT market_time_ms, time_ms FROM fills").fetchall()
        closed = [r for r in rows if r[0] == "CLOSED"]
        assert len(closed) >= 8, stack.logs("executor")[-3000:]
        carried = Decimal(0)
        for status, _, dust_in, dust_out, entry_market, exit_market, entry_candle in rows:
            assert Decimal(dust_in) == carried  # each position takes over what the last exit left
            assert entry_market == entry_candle + MINUTE  # market time of the decision: the candle's close
            if status == "CLOSED":
                assert exit_market is not None and Decimal(dust_out) < STEP
                carried = Decimal(dust_out)
        assert any(Decimal(r[2]) > 0 for r in rows)  # dust was carried, and sold with an exit
        assert all(market is not None for market, _ in fills)
        held = sum((Decimal(r[1]) for r in rows if r[0] in ("OPEN", "CLOSING")), Decimal(0))
        dust = btc_balance(stack) - held
        assert Decimal(0) <= dust < STEP and dust == carried
    finally:
        stack.stop_all()
