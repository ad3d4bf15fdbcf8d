"""``PROTECTION=exchange`` against the simulator, ``python -m services.executor`` as real
processes: the OCO placed after the entry, a stop-loss that fills on the exchange while the
executor is SIGKILLed, and a SELL signal that cancels the OCO before selling.

The simulator replays candles where BTCUSDT falls 10 USDT a candle and ETHUSDT rises 1 USDT a
candle, one candle a second, so a stop 0.04 % below a BTC entry is crossed within seconds and an
ETH position with 1 % levels is not touched while the test runs. No market_data runs: no tick
reaches the executor, so only the exchange can sell at the levels.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.trading.ids import entry_client_order_id, exit_client_order_id, protection_ids
from tests.exchange_sim.conftest import write_candles
from tests.exchange_sim.test_sim_oco import trend
from tests.executor.harness import (
    MINUTE,
    Bus,
    ExecutorProcess,
    Ledger,
    executor_env,
    ledger_on,
    start_process,
    wait_until,
)
from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration
_candles = itertools.count(random.randrange(1_000_000) * 1000)


def candle() -> int:
    return 1_400_000_000_000 + next(_candles) * MINUTE


@pytest.fixture(scope="module")
def trending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder: Path = tmp_path_factory.mktemp("trending")
    data = [
        write_candles(folder / "BTCUSDT_1m_fall.csv", trend(100_000, -10)),
        write_candles(folder / "ETHUSDT_1m_rise.csv", trend(2_000, 1)),
    ]
    with start_simulator(folder, data=data, speed=60, history=10, balances="USDT=100000") as process:
        yield process


def on_exchange(sim: SimulatorProcess, client_id: str) -> list[dict[str, Any]]:
    return [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]


def lists_of(sim: SimulatorProcess, list_client_id: str) -> list[dict[str, Any]]:
    return [ol for ol in sim.state()["order_lists"] if ol["listClientOrderId"] == list_client_id]


async def status_of(ledger: Ledger, client_id: str) -> str | None:
    order = await ledger.order(client_id)
    return None if order is None else str(order.status)


def logs(processes: list[ExecutorProcess]) -> str:
    return "\n".join(f"--- {p.instance}\n{p.log_text()[-5000:]}" for p in processes)


def env_for(sim: SimulatorProcess, redis_url: str, database_url: str, symbol: str, **extra: str) -> dict[str, str]:
    return executor_env(sim, redis_url, database_url, symbol, PROTECTION="exchange", CAPITAL_ALLOCATION="0.1", **extra)


async def test_a_stop_crossed_while_the_executor_is_killed_fills_on_the_exchange_and_is_recorded_once(
    trending: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    symbol = "BTCUSDT"
    env = env_for(trending, redis_url, sqlite_url, symbol, STOP_LOSS_PERCENTAGE="0.0004", TAKE_PROFIT_PERCENTAGE="0.02")
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-a")
    processes.append(first)
    open_time = candle()
    entry = entry_client_order_id(symbol, open_time)
    made = protection_ids(entry)
    try:
        await wait_until(lambda: _alerted(bus, "reconciled", symbol), 30, "first executor ready")
        await bus.signal(symbol, "BUY", open_time)
        async with ledger_on(sqlite_url) as ledger:
            # The list's answer is written leg by leg: kill once both are recorded as resting.
            await wait_until(lambda: _is(ledger, made.stop_loss, "SUBMITTED"), 15, "stop-loss leg resting")
            await wait_until(lambda: _is(ledger, made.take_profit, "SUBMITTED"), 15, "take-profit leg resting")
            first.kill()
            [oco] = lists_of(trending, made.list_id)
            assert oco["listOrderStatus"] == "EXECUTING"
            [stop] = on_exchange(trending, made.stop_loss)
            assert stop["type"] == "STOP_LOSS" and stop["side"] == "SELL"
            position = await ledger.open_position(symbol)
            assert position is not None and D(stop["stopPrice"]) == position.stop_loss
            assert D(stop["origQty"]) <= position.quantity

            # Nobody runs: the price walks through the stop and the exchange sells.
            await wait_until(lambda: _async(on_exchange(trending, made.stop_loss)[0]["status"] == "FILLED"), 30, "stop")
            assert on_exchange(trending, made.take_profit)[0]["status"] == "EXPIRED"

            second = start_process(tmp_path, env, "executor-b")
            processes.append(second)
            [closed] = await wait_until(lambda: ledger.closed(symbol), 30, "position closed at restart")
            assert closed.exit_reason == "stop_loss" and closed.entry_client_order_id == entry
            assert closed.exit_client_order_id == made.stop_loss
            trades = [t for t in trending.state()["trades"] if t["orderId"] == stop["orderId"]]
            fills = await ledger.fills(made.stop_loss)
            assert sorted(f.trade_id for f in fills) == sorted(t["id"] for t in trades) and trades
            assert closed.exit_price == sum(D(t["quoteQty"]) for t in trades) / sum(D(t["qty"]) for t in trades)
            await wait_until(lambda: _is(ledger, made.take_profit, "EXPIRED"), 15, "other leg's expiry recorded")
            # Nothing sold twice: no exit order of the bot's, one list, one stop-loss leg.
            assert await ledger.order(exit_client_order_id(entry)) is None
            assert not on_exchange(trending, exit_client_order_id(entry))
            assert trending.state()["client_order_ids"].count(made.stop_loss) == 1
            assert len(lists_of(trending, made.list_id)) == 1
            closes = [e for e in await bus.events("position_closed") if e.payload.symbol == symbol]
            assert len(closes) == 1 and closes[0].payload.exit_reason == "stop_loss"
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(processes)}") from e


async def test_a_sell_signal_cancels_the_oco_then_sells(
    trending: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    symbol = "ETHUSDT"
    env = env_for(trending, redis_url, sqlite_url, symbol, STOP_LOSS_PERCENTAGE="0.01", TAKE_PROFIT_PERCENTAGE="0.02")
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-c")
    processes.append(first)
    open_time = candle()
    entry = entry_client_order_id(symbol, open_time)
    made = protection_ids(entry)
    try:
        await wait_until(lambda: _alerted(bus, "reconciled", symbol), 30, "executor ready")
        await bus.signal(symbol, "BUY", open_time, price="2000")
        async with ledger_on(sqlite_url) as ledger:
            await wait_until(lambda: _is(ledger, made.take_profit, "SUBMITTED"), 15, "take-profit leg resting")
            snapshot = await wait_until(lambda: _protected(bus, symbol), 10, "snapshot says exchange")
            assert snapshot["status"] == "OPEN"
            [oco] = lists_of(trending, made.list_id)
            assert oco["listOrderStatus"] == "EXECUTING"

            # A restart finds the resting list: nothing placed again, its locked base is the position's.
            first.kill()
            processes.append(start_process(tmp_path, env, "executor-d"))
            await wait_until(lambda: _reconciled_twice(bus, symbol), 30, "second executor ready")
            assert await bus.alerts("balance_mismatch", symbol) == []
            assert await bus.alerts("protection_fallback", symbol) == []
            assert len(lists_of(trending, made.list_id)) == 1
            assert trending.state()["client_order_ids"].count(made.list_id) == 1
            assert (await bus.snapshot(symbol) or {}).get("protection") == "exchange"

            await bus.signal(symbol, "SELL", open_time + MINUTE, price="2000")
            [closed] = await wait_until(lambda: ledger.closed(symbol), 20, "position closed")
            assert closed.exit_reason == "signal" and closed.exit_client_order_id == exit_client_order_id(entry)
            assert await status_of(ledger, made.stop_loss) == "CANCELED"
            assert await status_of(ledger, made.take_profit) == "CANCELED"
            [oco] = lists_of(trending, made.list_id)
            assert oco["listOrderStatus"] == "ALL_DONE"
            [sold] = on_exchange(trending, exit_client_order_id(entry))
            assert sold["status"] == "FILLED" and 0 < D(sold["executedQty"]) <= closed.quantity
            assert (await bus.snapshot(symbol) or {})["status"] == "FLAT"
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(processes)}") from e


async def _alerted(bus: Bus, code: str, symbol: str) -> bool:
    return bool(await bus.alerts(code, symbol))


async def _reconciled_twice(bus: Bus, symbol: str) -> bool:
    return len(await bus.alerts("reconciled", symbol)) >= 2


async def _is(ledger: Ledger, client_id: str, status: str) -> bool:
    return await status_of(ledger, client_id) == status


async def _protected(bus: Bus, symbol: str) -> dict[str, Any] | None:
    snapshot = await bus.snapshot(symbol)
    return snapshot if snapshot and snapshot.get("protection") == "exchange" else None


async def _async(value: Any) -> Any:
    return value
