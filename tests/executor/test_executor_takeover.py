"""Which ticks the executor reads, as real processes: a stop-loss crossed while no executor ran
fires after the takeover, in the candle where it was crossed; a flat symbol's ticks are not
consumed, yet its group's backlog stays at zero."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from pathlib import Path

from redis.asyncio import Redis

from shared import streams
from shared.backlog import backlogs
from shared.events import now_ms
from shared.trading.ids import entry_client_order_id
from tests.executor.harness import (
    MINUTE,
    Bus,
    ExecutorProcess,
    executor_env,
    ledger_on,
    start_process,
    wait_until,
)
from tests.support.simulator import SimulatorProcess

_candles = itertools.count(random.randrange(1_000_000) * 1000)


async def ready(bus: Bus, symbol: str, count: int) -> bool:
    return len(await bus.alerts("reconciled", symbol)) >= count


async def ticker_backlog(redis: Redis, symbol: str) -> tuple[int, int] | None:
    found = await backlogs(redis, [(streams.ticker_stream(symbol), streams.GROUP_EXECUTOR)])
    return (found[0].entries, found[0].pending) if found else None


async def test_a_stop_loss_crossed_while_away_fires_after_takeover_and_flat_ticks_stay_unread(
    simulator: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    env = executor_env(simulator, redis_url, sqlite_url, "BTCUSDT,ETHUSDT")
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-a")
    processes.append(first)
    logs = ""
    try:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            await wait_until(lambda s=symbol: ready(bus, s, 1), 30, f"{symbol} reconciled")
        open_time = 1_300_000_000_000 + next(_candles) * MINUTE
        await bus.signal("BTCUSDT", "BUY", open_time)
        async with ledger_on(sqlite_url) as ledger:
            position = await wait_until(lambda: ledger.open_position("BTCUSDT"), 20, "BTCUSDT OPEN")
            assert position.entry_client_order_id == entry_client_order_id("BTCUSDT", open_time)
            assert position.stop_loss is not None and position.take_profit is not None
            above = (position.stop_loss + position.take_profit) / 2
            await bus.tick("BTCUSDT", str(above))
            # A flat symbol's ticks: its group is moved past them rather than read.
            for index in range(30):
                await bus.tick("ETHUSDT", str(2500 + index))
            await wait_until(lambda: _equals(ticker_backlog(redis, "ETHUSDT"), (0, 0)), 10, "ETHUSDT backlog 0")
            await wait_until(lambda: _equals(ticker_backlog(redis, "BTCUSDT"), (0, 0)), 10, "BTCUSDT tick read")
            [eth] = await redis.xinfo_groups(streams.ticker_stream("ETHUSDT"))
            [btc] = await redis.xinfo_groups(streams.ticker_stream("BTCUSDT"))
            assert eth["entries-read"] is None  # moved past (XGROUP SETID), never delivered
            assert btc["entries-read"] is not None and btc["entries-read"] >= 1  # read: a position is open
            logs += first.log_text()
            first.kill()

            # While no executor runs, the price crosses the stop-loss and comes back.
            crossed = await bus.tick("BTCUSDT", str((position.stop_loss * Decimal("0.99")).quantize(Decimal("0.01"))))
            for _ in range(5):
                await bus.tick("BTCUSDT", str(above))
            assert (await ledger.open_position("BTCUSDT")) is not None

            second = start_process(tmp_path, env, "executor-b")
            processes.append(second)
            [closed] = await wait_until(lambda: ledger.closed("BTCUSDT"), 30, "BTCUSDT closed after the takeover")
            assert closed.exit_reason == "stop_loss"
            assert closed.exit_candle_open_ms == crossed.ts_event_ms // MINUTE * MINUTE
            assert crossed.ts_event_ms <= now_ms()
            await wait_until(lambda: _equals(ticker_backlog(redis, "BTCUSDT"), (0, 0)), 10, "BTCUSDT backlog 0")
            for index in range(10):
                await bus.tick("ETHUSDT", str(2600 + index))
            await wait_until(lambda: _equals(ticker_backlog(redis, "ETHUSDT"), (0, 0)), 10, "ETHUSDT backlog 0 again")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs}\n" + "\n".join(p.log_text()[-4000:] for p in processes)) from e


async def _equals(value, expected) -> bool:
    return (await value) == expected
