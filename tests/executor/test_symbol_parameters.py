"""Each symbol's set drives the executor's sizing and protection of that symbol, whatever its
strategy; each position keeps the strategy and set version of the signal that opened it."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from shared import streams
from shared.bus import publish_atomically
from shared.control import update_parameters
from shared.parameter_sets import risk_of
from shared.trading.protection import protection_levels
from tests.executor.harness import MINUTE, InProcess, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess

_candles = itertools.count(random.randrange(1_000_000) * 1000)


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    handle = await start_in_process(
        simulator, redis_url, sqlite_url, "BTCUSDT,ETHUSDT", STRATEGIES="ETHUSDT:rsi2_reversion"
    )
    yield handle
    await handle.close()


async def _buy(ex: InProcess, symbol: str, strategy: str, version: int) -> None:
    open_time = 1_600_000_000_000 + next(_candles) * MINUTE
    await ex.bus.fresh(symbol, open_time + MINUTE)
    event = ex.bus.signal_event(symbol, "BUY", open_time)
    payload = event.payload.model_copy(update={"strategy": strategy, "parameters_version": version})
    event = event.model_copy(update={"payload": payload, "version": 2})
    await publish_atomically(ex.redis, [(streams.SIGNALS, event), (streams.executor_inbox(symbol), event)])


async def test_each_symbol_is_protected_with_its_own_set(ex: InProcess) -> None:
    control = ex.executor.control
    eth_start = ex.settings.initial_sets()["ETHUSDT"]
    assert (control.set_of("ETHUSDT").strategy, control.set_of("BTCUSDT").strategy) == (
        "rsi2_reversion",
        "ema_cross_rsi",
    )
    await update_parameters(
        ex.redis,
        {"STOP_LOSS_PERCENTAGE": "0.03", "TAKE_PROFIT_PERCENTAGE": "0.06"},
        "test",
        eth_start,
        registry=ex.settings.strategy_registry(),
        command_id="eth-risk",
    )

    async def eth_version_one() -> bool:
        return control.set_of("ETHUSDT").version == 1

    await wait_until(eth_version_one, 10, "ETHUSDT's version 1 in force")
    assert control.set_of("BTCUSDT").version == 0 and Decimal("0.02") == control.risk("BTCUSDT").STOP_LOSS_PERCENTAGE

    await _buy(ex, "BTCUSDT", "ema_cross_rsi", 0)
    await _buy(ex, "ETHUSDT", "rsi2_reversion", 1)
    btc = await wait_until(lambda: ex.ledger.open_position("BTCUSDT"), 15, "BTCUSDT position OPEN")
    eth = await wait_until(lambda: ex.ledger.open_position("ETHUSDT"), 15, "ETHUSDT position OPEN")
    for position, symbol in ((btc, "BTCUSDT"), (eth, "ETHUSDT")):
        tick = (await ex.executor.exchange.symbol_info(symbol)).filters.tick_size
        levels = protection_levels(position.entry_price, risk_of(control.set_of(symbol).parameters), tick)
        assert (position.stop_loss, position.take_profit) == levels
    # 3 % below the entry for ETHUSDT, 2 % for BTCUSDT (within a tick's rounding).
    assert eth.stop_loss < eth.entry_price * Decimal("0.971")
    assert btc.stop_loss > btc.entry_price * Decimal("0.979")
    assert (btc.strategy, btc.parameters_version) == ("ema_cross_rsi", 0)
    assert (eth.strategy, eth.parameters_version) == ("rsi2_reversion", 1)
