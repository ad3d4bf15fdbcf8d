"""Real candles through simulator -> market_data -> strategy -> executor, checked against the backtester.

Each test replays 300 one-minute candles of real data (the first 70 as warm-up history) at
240x speed; stop-loss and take-profit are tightened so that every exit reason occurs. A live
entry fills at whatever price the exchange has when the order lands (the signal candle's close,
the next open, or later when the machine is busy) and its levels follow that fill, so the
backtester is given the ledger's entry fills; which candles trade, and why, is still its call.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from backtest.config import BacktestConfig
from shared import streams
from shared.candles import load_candles
from shared.codec import decode
from shared.parameters import validate_parameters
from shared.strategy_loader import load_registry
from tests.pipeline.ledger import MINUTE, REPLAYS, entry_fills, expected_trades, first_open_time, replayed_trades
from tests.support.drain import groups_drained
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS, HISTORY, SPEED = 300, 70, 240
RISK = {"STOP_LOSS_PERCENTAGE": "0.002", "TAKE_PROFIT_PERCENTAGE": "0.004"}
PARAMS = validate_parameters(RISK)
ENV = {**RISK, "SIGNAL_MAX_LAG_CANDLES": "12"}


def replay_frame(symbol: str, replays: Mapping[str, tuple[Path, int]] = REPLAYS, rows: int = ROWS):
    path, start = replays[symbol]
    return load_candles(path).iloc[start : start + rows]


def wait_for_candle(stack: Stack, symbol: str, index: int, timeout: float = 150) -> None:
    client = stack.client()

    def reached() -> bool:
        last = client.hget(streams.KLINE_LAST_OPEN, symbol)
        entries = client.xrange(streams.kline_stream(symbol), count=1)
        return bool(last and entries) and (int(last) - int(entries[0][1]["open_time_ms"])) // MINUTE >= index

    stack.wait_for(reached, timeout, f"{symbol} candle {index}")


def settle(stack: Stack, symbols: list[str], rows: int = ROWS) -> None:
    """Wait for the end of the replay and for every executor inbox to be drained."""
    for symbol in symbols:
        wait_for_candle(stack, symbol, rows - 2, timeout=150 * SPEED / speed_of(stack))
    client = stack.client()

    def drained() -> bool:
        for symbol in symbols:
            for stream in (streams.executor_inbox(symbol), streams.ticker_stream(symbol)):
                if not groups_drained(client, stream):
                    return False
        return True

    stack.wait_for(drained, 60, "executors to drain their streams")
    time.sleep(1.0)


def speed_of(stack: Stack) -> float:
    return float(stack.env["EXCHANGE_SIM_SPEED"])


def run_replay(
    tmp_path: Path,
    symbols: list[str],
    during=None,
    replicas: int = 1,
    env: dict | None = None,
    speed: float = SPEED,
    strategy: Any = None,
    strategy_params: Any = None,
    replays: Mapping[str, tuple[Path, int]] = REPLAYS,
    config: BacktestConfig | None = None,
    rows: int = ROWS,
) -> tuple[Stack, dict[str, list], dict[str, list]]:
    """Replay ``rows`` candles of ``symbols`` (from ``replays``); return the stack, the trades in
    its ledger and the trades the backtester makes (with ``config``) with the ledger's entry
    fills, by symbol."""
    data = [prepare_data(tmp_path, replays[s][0], s, replays[s][1], rows) for s in symbols]
    # The replay clock starts once every service (every replica) has loaded: on a busy machine
    # imports take seconds, and at 240x the first tradable candles would otherwise pass before
    # anyone reads them.
    services = ("market_data", *("strategy", "executor") * replicas)
    stack = start_stack(
        tmp_path / "stack",
        data=data,
        symbols=symbols,
        speed=speed,
        history=HISTORY,
        services=services,
        extra_env={**ENV, **(env or {})},
        exchange_last=True,
    )
    try:
        if during is not None:
            during(stack)
        settle(stack, symbols, rows)
        client = stack.client()
        database = stack.folder / "bot.sqlite3"
        first = {s: first_open_time(client, s) for s in symbols}
        ledgers = {s: replayed_trades(database, s, first[s]) for s in symbols}
        expected = {
            s: expected_trades(
                replay_frame(s, replays, rows),
                PARAMS,
                HISTORY,
                entry_fills(database, s, first[s]),
                strategy,
                strategy_params,
                config,
            )
            for s in symbols
        }
        return stack, ledgers, expected
    except BaseException:
        stack.stop_all()
        raise


def client_ids_sent(stack: Stack) -> list[str]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{stack.sim_url}/_sim/state", timeout=10) as response:
        return json.loads(response.read())["client_order_ids"]


def test_replayed_trades_match_the_backtest_candle_for_candle(tmp_path: Path) -> None:
    closes = expected_trades(replay_frame("BTCUSDT"), PARAMS, HISTORY)
    assert {t.reason for t in closes} >= {"stop_loss", "take_profit", "signal"}
    stack, ledgers, expected = run_replay(tmp_path, ["BTCUSDT"])
    try:
        assert ledgers["BTCUSDT"] == expected["BTCUSDT"], stack.logs("executor")[-3000:]
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent)) == sum(2 if t.exit is not None else 1 for t in expected["BTCUSDT"])
        signals = stack.client().xrange(streams.SIGNALS)
        assert len({fields["event_id"] for _, fields in signals}) == len(signals)
    finally:
        stack.stop_all()


# Periods short enough to warm up inside the 70 history candles, on a series where no entry falls
# in the last history candles (whose recency, so whether they trade live, depends on the machine's
# speed at the start). The user strategy is the example file copied into a folder of its own.
OTHER_STRATEGIES = {
    "rsi2_reversion": ("BTCUSDT", "TREND_PERIOD=40 ENTRY_RSI=15"),
    "donchian_breakout": ("BNBUSDT", "ENTRY_PERIOD=20 EXIT_PERIOD=10"),
    "replayed_cross": ("BTCUSDT", "PERIOD=20"),
}


# rsi2_reversion on BTCUSDT with these parameters is also test_strategy_per_symbol's BTCUSDT, whose
# parity check is the same: make test runs it there, this copy is the long tier's.
@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=[pytest.mark.long] if name == "rsi2_reversion" else []) for name in OTHER_STRATEGIES],
)
def test_another_strategy_replays_as_it_backtests(tmp_path: Path, name: str) -> None:
    symbol, text = OTHER_STRATEGIES[name]
    folder = tmp_path / "strategies"
    folder.mkdir()
    example = Path(__file__).resolve().parents[2] / "strategies" / "sma_cross_example.py"
    (folder / "replayed.py").write_text(example.read_text().replace('"sma_cross_example"', '"replayed_cross"'))
    strategy = load_registry(folder).get(name)
    strategy_params = strategy.parameters(dict(pair.split("=") for pair in text.split()))
    frame = replay_frame(symbol).reset_index(drop=True)
    candles = {column: frame[column].to_numpy() for column in ("open", "high", "low", "close", "volume")}
    entry, _ = strategy.signal_arrays(strategy.compute(frame, strategy_params), candles, strategy_params)
    assert not entry[HISTORY - int(ENV["SIGNAL_MAX_LAG_CANDLES"]) - 1 : HISTORY].any()
    closes = expected_trades(frame, PARAMS, HISTORY, strategy=strategy, strategy_params=strategy_params)
    assert len(closes) >= 3 and "signal" in {t.reason for t in closes}
    env = {"STRATEGY": name, "STRATEGY_PARAMS": text, "STRATEGY_PATH": str(folder)}
    stack, ledgers, expected = run_replay(
        tmp_path, [symbol], env=env, strategy=strategy, strategy_params=strategy_params
    )
    try:
        assert ledgers[symbol] == expected[symbol], stack.logs("strategy")[-3000:]
        reasons = {decode(fields).payload.reason for _, fields in stack.client().xrange(streams.SIGNALS)}
        assert reasons and reasons <= {strategy.entry_reason, strategy.exit_reason}
    finally:
        stack.stop_all()
    shutil.rmtree(folder, ignore_errors=True)


def test_sigkill_of_each_service_in_turn_changes_nothing(tmp_path: Path) -> None:
    def kill_each(stack: Stack) -> None:
        # market_data while flat; strategy while flat; executor while a position is open (197-204).
        kills = (("market_data", 125), ("strategy", 160), ("executor", 197))
        # Imported now, so each kill lands at its candle however long imports take.
        warm = {name: stack.prepare(name) for name, _ in kills}
        for name, index in kills:
            wait_for_candle(stack, "BTCUSDT", index)
            if name == "executor":
                stack.wait_for(
                    lambda: '"OPEN"' in (stack.client().hget(streams.POSITIONS, "BTCUSDT") or ""), 30, "the position"
                )
            stack.restart(name, warm=warm[name])  # SIGKILL, and the fresh process 0.5 s later

    # Tickers from the all-market array (what market_data reads past a few symbols): the same ledger.
    stack, ledgers, expected = run_replay(
        tmp_path, ["BTCUSDT"], during=kill_each, env={"MARKET_TICKER_STREAM": "array"}
    )
    try:
        assert "array=True" in stack.logs("market_data")
        assert ledgers["BTCUSDT"] == expected["BTCUSDT"], stack.all_logs()[-6000:]
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent)), Counter(sent).most_common(3)
        opens = [int(f["open_time_ms"]) for _, f in stack.client().xrange(streams.kline_stream("BTCUSDT"))]
        assert opens == sorted(set(opens)) and all(b - a == MINUTE for a, b in itertools.pairwise(opens))
    finally:
        stack.stop_all()


def test_two_replicas_of_strategy_and_executor_over_four_symbols(tmp_path: Path) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
    # Every symbol trades one account: each entry may use 20 % of the free balance, so positions
    # opened at the same moment all fit. Six processes share two cores here, so candles last
    # twice as long.
    stack, ledgers, expected = run_replay(
        tmp_path, symbols, replicas=2, env={"CAPITAL_ALLOCATION": "0.2"}, speed=SPEED / 2
    )
    try:
        assert "array=True" in stack.logs("market_data")  # four symbols: the array, chosen automatically
        assert ledgers == expected
        sent = client_ids_sent(stack)
        assert len(sent) == len(set(sent))
        signals = stack.client().xrange(streams.SIGNALS)
        assert len({fields["event_id"] for _, fields in signals}) == len(signals)
        for service in ("strategy", "executor"):
            owners = [stack.client().get(streams.lease_key(service, s)) for s in symbols]
            assert sorted(Counter(owners).values()) == [2, 2], (service, owners)  # shared out evenly
    finally:
        stack.stop_all()
