"""``python -m services.executor`` as real processes: a crash between sending an order and
recording its answer, restart and reconciliation; two replicas sharing the symbols."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from shared import streams
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.executor.harness import (
    Bus,
    ExecutorProcess,
    candle,
    executor_env,
    ledger_on,
    start_process,
    wait_until,
)
from tests.support.simulator import SimulatorProcess


def sim_orders(sim: SimulatorProcess, client_id: str) -> list[dict]:
    return [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]


async def reconciled(bus: Bus, symbol: str, count: int = 1) -> bool:
    return len(await bus.alerts("reconciled", symbol)) >= count


def logs(processes: list[ExecutorProcess]) -> str:
    return "\n".join(f"--- {p.instance}\n{p.log_text()[-4000:]}" for p in processes)


async def test_an_order_filled_while_the_executor_was_down_is_recorded_once(
    simulator: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    database_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    symbol = "BTCUSDT"
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    env = executor_env(simulator, redis_url, database_url, symbol)
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-a")
    processes.append(first)
    try:
        await wait_until(lambda: reconciled(bus, symbol), 30, "first executor ready")
        # The order executes at once, but its answer is held back: the executor is killed while
        # it waits, after its intent was committed and the order reached the exchange.
        simulator.delay_next(10_000, path_prefix="/api/v3/order", after=True)
        open_time = candle()
        client_id = entry_client_order_id(symbol, open_time)
        await bus.signal(symbol, "BUY", open_time)
        async with ledger_on(database_url) as ledger:
            await wait_until(lambda: ledger.order(client_id), 10, "intent written")
            await wait_until(lambda: _async(sim_orders(simulator, client_id)), 10, "order on the exchange")
            first.kill()
            assert (await ledger.order(client_id)).status == "INTENT"

            second = start_process(tmp_path, env, "executor-b")
            processes.append(second)
            position = await wait_until(lambda: ledger.open_position(symbol), 30, "position recorded at reconciliation")
            assert position.entry_client_order_id == client_id
            order = await ledger.order(client_id)
            [on_exchange] = sim_orders(simulator, client_id)
            assert order.status == "FILLED" and order.exchange_order_id == on_exchange["orderId"]
            trades = [t for t in simulator.state()["trades"] if t["orderId"] == on_exchange["orderId"]]
            assert sorted(f.trade_id for f in await ledger.fills(client_id)) == sorted(t["id"] for t in trades)
            assert simulator.state()["client_order_ids"].count(client_id) == 1
            # The signal left pending by the killed process is handled again: nothing more is sent.
            await wait_until(lambda: _inbox_settled(redis, symbol), 10, "inbox settled")
            assert len(await bus.events("position_opened")) == 1

            await bus.close_position(symbol)
            [closed] = await wait_until(lambda: ledger.closed(symbol), 15, "position CLOSED")
            assert closed.exit_reason == "manual" and closed.entry_candle_open_ms == open_time
            assert len(sim_orders(simulator, exit_client_order_id(client_id))) == 1
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(processes)}") from e


async def _async(value):
    return value


async def _inbox_settled(redis: Redis, symbol: str) -> bool:
    groups = await redis.xinfo_groups(streams.executor_inbox(symbol))
    return bool(groups) and all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


async def test_two_replicas_share_the_symbols_and_never_double_an_order(
    simulator: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    simulator.reset_faults()
    simulator.set_balances({"USDT": "20000", "BTC": "0", "ETH": "0"})
    env = executor_env(simulator, redis_url, sqlite_url, ",".join(symbols), CAPITAL_ALLOCATION="0.4")
    bus = Bus(redis)
    processes.append(start_process(tmp_path, env, "replica-1"))
    processes.append(start_process(tmp_path, env, "replica-2"))
    try:

        async def split() -> bool:
            owners = [await redis.get(streams.lease_key("executor", s)) for s in symbols]
            return None not in owners and len(set(owners)) == 2

        await wait_until(split, 30, "one symbol per replica")
        for symbol in symbols:
            await wait_until(lambda s=symbol: _owner_ready(bus, redis, s), 20, f"{symbol} reconciled by its owner")
        owners = {s: await redis.get(streams.lease_key("executor", s)) for s in symbols}

        open_time = candle()
        for symbol in symbols:
            await bus.signal(symbol, "BUY", open_time)
            await bus.signal(symbol, "BUY", open_time)
        async with ledger_on(sqlite_url) as ledger:
            for symbol in symbols:
                await wait_until(lambda s=symbol: ledger.open_position(s), 15, f"{symbol} OPEN")
            for symbol in symbols:
                client_id = entry_client_order_id(symbol, open_time)
                assert len(sim_orders(simulator, client_id)) == 1
                assert simulator.state()["client_order_ids"].count(client_id) == 1
                for process in processes:
                    sent = f"as {client_id} " in process.log_text()
                    assert sent == (process.instance == owners[symbol]), f"{client_id} sent by {process.instance}"
            assert len(await ledger.orders()) == 2

            # One replica stops; the other takes its symbol over and manages that position.
            leaving = next(p for p in processes if p.instance == owners["BTCUSDT"])
            staying = next(p for p in processes if p is not leaving)
            leaving.stop()

            async def taken_over() -> bool:
                return await redis.get(streams.lease_key("executor", "BTCUSDT")) == staying.instance

            await wait_until(taken_over, 20, "BTCUSDT taken over")
            await bus.close_position("BTCUSDT")
            [closed] = await wait_until(lambda: ledger.closed("BTCUSDT"), 15, "BTCUSDT closed by the other replica")
            exit_id = exit_client_order_id(entry_client_order_id("BTCUSDT", open_time))
            assert closed.exit_client_order_id == exit_id and len(sim_orders(simulator, exit_id)) == 1
            assert (await ledger.active("ETHUSDT")).status == "OPEN"
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(processes)}") from e


async def _owner_ready(bus: Bus, redis: Redis, symbol: str) -> bool:
    # The owner's reconciliation alert comes after its groups exist; its streams follow at once.
    if not await reconciled(bus, symbol):
        return False
    groups = await redis.xinfo_groups(streams.executor_inbox(symbol))
    consumers = await redis.xinfo_consumers(streams.executor_inbox(symbol), streams.GROUP_EXECUTOR) if groups else []
    return bool(consumers)
