"""Two symbols, two strategies, one replay through simulator -> market_data -> strategy -> executor.

BTCUSDT runs rsi2_reversion (``STRATEGY``), ETHUSDT ema_cross_rsi (``STRATEGIES``). Each trades
as the backtester does with its own strategy; every signal and decision names its symbol's
strategy and set version; a change of ETHUSDT's set while the replay runs bumps ETHUSDT's
version only; every position keeps the strategy and version of the signal that opened it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import signing, streams
from shared.codec import decode
from shared.control import update_parameters
from shared.parameter_sets import SymbolSet
from shared.trading.strategies import builtin_registry
from tests.pipeline.ledger import REPLAYS, entry_fills, expected_trades, first_open_time, replayed_trades
from tests.pipeline.test_replay import ENV, HISTORY, PARAMS, ROWS, SPEED, replay_frame, settle
from tests.support.stack import prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

RSI2_TEXT = "TREND_PERIOD=40 ENTRY_RSI=15"
CHOICE = {
    "STRATEGY": "rsi2_reversion",
    "STRATEGY_PARAMS": RSI2_TEXT,
    "STRATEGIES": "ETHUSDT:ema_cross_rsi",
}
STRATEGY_OF = {"BTCUSDT": "rsi2_reversion", "ETHUSDT": "ema_cross_rsi"}


def _change_eth_risk(redis_url: str, key: bytes | None) -> int:
    """What an operator's PUT /api/parameters?symbol=ETHUSDT writes: a sizing change (the trades,
    as candles, stay the backtester's)."""

    async def change() -> int:
        client = Redis.from_url(redis_url, decode_responses=True)
        previous = signing.installed_key()
        signing.install(key)
        try:
            start = SymbolSet("ETHUSDT", "ema_cross_rsi", 0, PARAMS)
            version, _ = await update_parameters(client, {"RISK_PER_TRADE": "0.011"}, "test", start, source="test")
            return version
        finally:
            signing.install(previous)
            await client.aclose()

    return asyncio.run(change())


def _positions(database: Path, symbol: str) -> list[tuple[int, str | None, int | None]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT entry_candle_open_ms, strategy, parameters_version FROM positions WHERE symbol = ? ORDER BY id",
            (symbol,),
        ).fetchall()


def test_two_symbols_run_two_strategies_with_their_own_names_and_versions(tmp_path: Path) -> None:
    registry = builtin_registry()
    rsi2 = registry.get("rsi2_reversion")
    rsi2_params = rsi2.parameters(dict(pair.split("=") for pair in RSI2_TEXT.split()))
    symbols = list(STRATEGY_OF)
    data = [prepare_data(tmp_path, REPLAYS[s][0], s, REPLAYS[s][1], ROWS) for s in symbols]
    stack = start_stack(
        tmp_path / "stack",
        data=data,
        symbols=symbols,
        speed=SPEED,
        history=HISTORY,
        services=("market_data", "strategy", "executor"),
        extra_env={**ENV, **CHOICE},
        exchange_last=True,
    )
    try:
        key = signing.read_key(stack.env["BUS_SIGNING_KEY"], None)
        assert _change_eth_risk(stack.redis_url, key) == 1
        settle(stack, symbols)
        client = stack.client()
        database = stack.folder / "bot.sqlite3"
        for symbol in symbols:
            first = first_open_time(client, symbol)
            mine = (rsi2, rsi2_params) if symbol == "BTCUSDT" else (None, None)
            expected = expected_trades(
                replay_frame(symbol), PARAMS, HISTORY, entry_fills(database, symbol, first), *mine
            )
            assert replayed_trades(database, symbol, first) == expected, (symbol, stack.logs("executor")[-3000:])
            assert expected, f"{symbol} made no trade: nothing about its trades was checked"

        signals = [decode(fields).payload for _, fields in client.xrange(streams.SIGNALS)]
        decisions = [decode(fields).payload for _, fields in client.xrange(streams.DECISIONS)]
        for symbol, strategy in STRATEGY_OF.items():
            own = [s for s in signals if s.symbol == symbol]
            assert own and {s.strategy for s in own} == {strategy}
            assert {s.reason for s in own} <= {registry.get(strategy).entry_reason, registry.get(strategy).exit_reason}
            assert {d.strategy for d in decisions if d.symbol == symbol and not d.note} == {strategy}
        # ETHUSDT's change is ETHUSDT's version 1; BTCUSDT's set never changed.
        assert {s.parameters_version for s in signals if s.symbol == "BTCUSDT"} == {0}
        eth_versions = [d.parameters_version for d in decisions if d.symbol == "ETHUSDT"]
        assert set(eth_versions) <= {0, 1} and eth_versions[-1] == 1
        assert eth_versions == sorted(eth_versions)
        assert client.get(streams.parameters_key("BTCUSDT")) is None

        # Each trade remembers the strategy and the set version of the signal that opened it.
        opened_by = {
            (s.symbol, s.candle_open_time_ms): (s.strategy, s.parameters_version) for s in signals if s.side == "BUY"
        }
        for symbol in symbols:
            rows = _positions(database, symbol)
            assert rows
            for entry_open, strategy, version in rows:
                assert (strategy, version) == opened_by[(symbol, entry_open)]
    finally:
        stack.stop_all()
