"""``PROTECTION=exchange`` replayed: the executor places an OCO after each entry and the simulator's
walk fills its legs; the backtester with ``PROTECTION=exchange`` makes the same trades, candle for
candle, and its leg exits are at the legs' prices.

The windows of the ETHUSDT 2025 file replayed hold a bearish candle that spans both legs of a
position 48 candles after its entry (open 2600.77, high 2614.00, low 2584.50, close 2589.07
against 2589.11 / 2604.66): the simulator walks its high first, so the take-profit leg sells,
where the bot's watch in the backtest (open, low, high) takes the stop.

These replays run at 120x, not 240x: the exchange fills a leg the moment its walk reaches the
level, while a SELL signal reaches the exchange only after the candle's close went through
market_data, strategy and executor (a second on a loaded machine, four candles at 240x); a level
reached a few candles after a signal would then sell first, which no backtest rule can know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.config import BacktestConfig
from shared import streams
from shared.parameters import validate_parameters
from shared.trading.ids import is_protection_id
from shared.trading.vocabulary import ProtectionMode
from tests.pipeline.ledger import (
    SHARED_DATA,
    TradeKey,
    backtest_trades,
    entry_fills,
    expected_trades,
    first_open_time,
    leg_exits,
)
from tests.pipeline.test_replay import (
    HISTORY,
    PARAMS,
    ROWS,
    client_ids_sent,
    replay_frame,
    run_replay,
    wait_for_candle,
)
from tests.support.stack import Stack, start_stack  # noqa: F401 - makes it a replay module (tests/conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXCHANGE_ENV = {"PROTECTION": "exchange"}
ETH_2025 = SHARED_DATA / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz"
SPEED = 120
# 190 candles: a stop-loss, a SELL signal and the spanning candle, 176, of the position entered at 128.
SHORT, SHORT_ROWS, SHORT_ENTRY, SHORT_SPANNING = {"ETHUSDT": (ETH_2025, 63934)}, 190, 128, 176
# From 32 candles earlier, 300 of them: the spanning candle is 208, of the position entered at 160.
LONG = {"ETHUSDT": (ETH_2025, 63902)}


def exchange_config(symbol: str) -> BacktestConfig:
    return BacktestConfig(symbol=symbol, protection=ProtectionMode.EXCHANGE)


def assert_legs_sold_at_their_levels(
    stack: Stack, symbol: str, replays: Mapping[str, tuple[Path, int]], rows: int = ROWS
) -> dict[int, tuple[str, Decimal]]:
    """Each position an OCO leg sold in the ledger: the backtest's trade has the reason, the
    take-profit leg's price and the stop leg's price (the simulator sells a stop at its stop
    price; the backtest too, or at the open of a candle that gapped below it). Returns them by
    entry candle (``leg_exits``): which levels a replay reaches depends on its entry fills."""
    database = stack.folder / "bot.sqlite3"
    first = first_open_time(stack.client(), symbol)
    frame = replay_frame(symbol, replays, rows).reset_index(drop=True)
    trades = {
        t.entry_index: t
        for t in backtest_trades(
            frame, PARAMS, HISTORY, entry_fills(database, symbol, first), config=exchange_config(symbol)
        )
    }
    sold = leg_exits(database, symbol, first)
    for entry, (reason, price) in sold.items():
        trade = trades[entry]
        assert reason == trade.exit_reason.value, (entry, reason, trade)
        if reason == "take_profit":
            assert price == trade.take_profit == trade.exit_price and trade.maker_exit, (entry, price, trade)
        else:
            gap_open = Decimal(repr(float(frame["open"].iloc[trade.exit_index])))
            assert price == trade.stop_loss, (entry, price, trade)
            assert trade.exit_price in (trade.stop_loss, gap_open) and not trade.maker_exit, (entry, trade)
    return sold


def test_replay_with_the_oco_on_the_exchange_matches_the_backtest(tmp_path: Path) -> None:
    frame = replay_frame("ETHUSDT", SHORT, SHORT_ROWS)
    closes = expected_trades(frame, PARAMS, HISTORY, config=exchange_config("ETHUSDT"))
    assert {t.reason for t in closes} >= {"stop_loss", "take_profit", "signal"}
    by_bot = expected_trades(frame, PARAMS, HISTORY)
    assert [(t.exit, t.reason) for t in closes if t.exit == SHORT_SPANNING] == [(SHORT_SPANNING, "take_profit")]
    assert (SHORT_SPANNING, "stop_loss") in {(t.exit, t.reason) for t in by_bot}
    stack, ledgers, expected = run_replay(
        tmp_path,
        ["ETHUSDT"],
        env=EXCHANGE_ENV,
        speed=SPEED,
        replays=SHORT,
        config=exchange_config("ETHUSDT"),
        rows=SHORT_ROWS,
    )
    try:
        assert ledgers["ETHUSDT"] == expected["ETHUSDT"], stack.logs("executor")[-3000:]
        sold = assert_legs_sold_at_their_levels(stack, "ETHUSDT", SHORT, SHORT_ROWS)
        assert sold[SHORT_ENTRY][0] == "take_profit"  # the spanning candle's high, by the LIMIT_MAKER leg
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent))
        lists = [cid for cid in sent if is_protection_id(cid) and cid.startswith("PL-")]
        assert len(lists) == len(expected["ETHUSDT"])  # one OCO per entry, each sent once
    finally:
        stack.stop_all()


# ATR levels and a trailing stop on the exchange: the first stop 3 ATR(14) below the entry, then
# trailing 0.15 % behind the closes, which replaces the OCO by a single stop order on the first
# candle that raises it, the take-profit then the bot's. Over the short window this makes a
# stop-loss, a SELL signal and a take-profit taken by the bot after the replacement (entry 128).
MOVING = {"STOP_MODE": "atr", "ATR_STOP_MULTIPLIER": "3", "STOP_ATR_PERIOD": "14", "TRAILING_STOP_PERCENTAGE": "0.0015"}
MOVING_RISK = {"STOP_LOSS_PERCENTAGE": "0.002", "TAKE_PROFIT_PERCENTAGE": "0.003", **MOVING}
MOVING_PARAMS = validate_parameters(MOVING_RISK)


def _assert_moving_parity(tmp_path: Path, replays: Mapping[str, tuple[Path, int]], rows: int) -> list[TradeKey]:
    stack, ledgers, _ = run_replay(
        tmp_path, ["ETHUSDT"], env={**EXCHANGE_ENV, **MOVING_RISK}, speed=SPEED, replays=replays, rows=rows
    )
    try:
        database = stack.folder / "bot.sqlite3"
        first = first_open_time(stack.client(), "ETHUSDT")
        frame = replay_frame("ETHUSDT", replays, rows)
        fills = entry_fills(database, "ETHUSDT", first)
        expected = expected_trades(frame, MOVING_PARAMS, HISTORY, fills, config=exchange_config("ETHUSDT"))
        assert ledgers["ETHUSDT"] == expected, stack.logs("executor")[-3000:]
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent))
        # Each position's first protection is an OCO; every later one a single stop, never a list.
        assert [cid for cid in sent if cid.startswith("PL-")] and not [cid for cid in sent if cid.startswith("PL2-")]
        assert [cid for cid in sent if cid.startswith("PS2-")], "no stop was replaced"
        return expected
    finally:
        stack.stop_all()


def test_replay_with_atr_levels_and_a_trailing_stop_on_the_exchange_matches_the_backtest(tmp_path: Path) -> None:
    frame = replay_frame("ETHUSDT", SHORT, SHORT_ROWS)
    planned = expected_trades(frame, MOVING_PARAMS, HISTORY, config=exchange_config("ETHUSDT"))
    assert {t.reason for t in planned} >= {"stop_loss", "take_profit", "signal"}
    expected = _assert_moving_parity(tmp_path, SHORT, SHORT_ROWS)
    assert {t.reason for t in expected} >= {"stop_loss", "take_profit"}


@pytest.mark.long
@pytest.mark.timeout(600)
def test_a_longer_replay_with_atr_levels_and_a_trailing_stop_on_the_exchange_matches_the_backtest(
    tmp_path: Path,
) -> None:
    _assert_moving_parity(tmp_path, LONG, ROWS)


def _oco_resting(stack: Stack, symbol: str) -> bool:
    text = stack.client().hget(streams.POSITIONS, symbol)
    snapshot = json.loads(text) if text else {}
    return snapshot.get("status") == "OPEN" and snapshot.get("protection") == "exchange"


@pytest.mark.long
@pytest.mark.timeout(600)
def test_the_exchange_sells_at_the_take_profit_while_the_executor_is_down(tmp_path: Path) -> None:
    """The executor is killed once the OCO of the position entered at 160 rests and started again
    only after candle 212: the take-profit leg sold at the spanning candle 208 with nobody
    watching, and the returning executor records that exit in its candle, once."""

    def kill_while_protected(stack: Stack) -> None:
        # The next executor imports first (seconds on a loaded machine, many candles of a replay).
        held = stack.folder / "executor-held"
        fresh = stack.start("executor", held=held)
        stack.wait_for(lambda: held.exists() or not fresh.alive(), 180, "the next executor to import its modules")
        wait_for_candle(stack, "ETHUSDT", 161)
        stack.wait_for(lambda: _oco_resting(stack, "ETHUSDT"), 30, "the OCO of the position")
        stack.kill("executor", 0)
        wait_for_candle(stack, "ETHUSDT", 212)
        assert fresh.process.stdin is not None
        fresh.process.stdin.write(b"run\n")
        fresh.process.stdin.close()

    stack, ledgers, expected = run_replay(
        tmp_path,
        ["ETHUSDT"],
        during=kill_while_protected,
        env=EXCHANGE_ENV,
        speed=SPEED,
        replays=LONG,
        config=exchange_config("ETHUSDT"),
    )
    try:
        assert ledgers["ETHUSDT"] == expected["ETHUSDT"], stack.all_logs()[-6000:]
        assert [(t.exit, t.reason) for t in expected["ETHUSDT"] if t.entry == 160] == [(208, "take_profit")]
        sold = assert_legs_sold_at_their_levels(stack, "ETHUSDT", LONG)
        assert sold[160][0] == "take_profit"  # the leg sold it, with nobody watching
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent))
    finally:
        stack.stop_all()
