"""A moved stop with ``PROTECTION=exchange`` against the simulator and a real redis-server: on
the candle that moves the stop, the resting OCO's stop leg is replaced atomically
(``order/cancelReplace``) by a single stop order of the next generation at the ledger's stop, and
then that stop by the next one; a watcher polling the exchange's orders throughout sees exactly one
resting stop of the position at every observation. The take-profit is the bot's from the first
replacement on (a tick at it sells at market, after the stop is cancelled, once). A SIGKILL
during the replacement leaves exactly one resting stop at every moment, and after the restart
the new one, nothing sold.

The simulator replays ETHUSDT rising 1 USDT a candle, one candle a second, so every stop the
test moves to (below the entry) stays below the exchange's last price. The closed klines that
move the stop are written to the kline stream by the test, as market_data appends them.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.bus import publish
from shared.events import Kline, make_event
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
    start_in_process,
    start_process,
    wait_until,
)
from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration
SYMBOL = "ETHUSDT"
TRAILING = Decimal("0.01")
_candles = itertools.count(random.randrange(1_000_000) * 1000)


def candle() -> int:
    return 1_450_000_000_000 + next(_candles) * 10 * MINUTE


@pytest.fixture(scope="module")
def rising(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder: Path = tmp_path_factory.mktemp("rising")
    data = [write_candles(folder / "ETHUSDT_1m_rise.csv", trend(2_000, 1))]
    with start_simulator(folder, data=data, speed=60, history=10, balances="USDT=100000") as process:
        yield process


def stop_env() -> dict[str, str]:
    return {
        "PROTECTION": "exchange",
        "CAPITAL_ALLOCATION": "0.1",
        "STOP_LOSS_PERCENTAGE": "0.02",
        "TAKE_PROFIT_PERCENTAGE": "0.05",
        "TRAILING_STOP_PERCENTAGE": str(TRAILING),
    }


async def closed_kline(redis: Redis, open_ms: int, close: Decimal) -> None:
    kline = Kline(
        symbol=SYMBOL,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + MINUTE - 1,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=Decimal(1),
        closed=True,
    )
    event = make_event(kline, "market_data", open_ms + MINUTE - 1, event_id=f"kline-{SYMBOL}-1m-{open_ms}")
    await publish(redis, streams.kline_stream(SYMBOL), event)


def open_lists(sim: SimulatorProcess, entry: str) -> list[dict[str, Any]]:
    """The open lists of the position entered by ``entry`` (the simulator outlives each test)."""
    rest = entry.split("-", 1)[1]
    return [
        ol
        for ol in sim.state()["order_lists"]
        if ol["listOrderStatus"] == "EXECUTING" and ol["listClientOrderId"].endswith(f"-{rest}")
    ]


def resting(sim: SimulatorProcess, entry: str) -> list[dict[str, Any]]:
    """The position's protection orders open on the exchange (one read of its whole state)."""
    rest = entry.split("-", 1)[1]
    return [
        o
        for o in sim.state()["orders"]
        if o["status"] in ("NEW", "PARTIALLY_FILLED")
        and o["clientOrderId"].startswith(("PS", "PT"))
        and o["clientOrderId"].endswith(f"-{rest}")
    ]


def order_on(sim: SimulatorProcess, client_id: str) -> dict[str, Any]:
    [order] = [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]
    return order


class StopWatch:
    """Polls the exchange's open orders of the position while a test runs and counts, at every
    observation, its resting stop orders (``STOP_LOSS`` / ``STOP_LOSS_LIMIT``)."""

    def __init__(self, sim: SimulatorProcess, entry: str) -> None:
        self.sim, self.entry = sim, entry
        self.counts: list[int] = []
        self.lists_most = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            orders = await asyncio.to_thread(resting, self.sim, self.entry)
            self.counts.append(sum(1 for o in orders if o["type"].startswith("STOP_LOSS")))
            self.lists_most = max(self.lists_most, len({o["orderListId"] for o in orders if o["orderListId"] != -1}))
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def assert_one_stop_throughout(self) -> None:
        assert len(self.counts) > 10, "too few observations"
        assert set(self.counts) == {1}, f"resting stops seen: {sorted(set(self.counts))}"
        assert self.lists_most <= 1


async def _status(ledger: Ledger, client_id: str) -> str | None:
    order = await ledger.order(client_id)
    return None if order is None else str(order.status)


async def _is(ledger: Ledger, client_id: str, status: str) -> bool:
    return await _status(ledger, client_id) == status


def trailed(close: Decimal, tick: Decimal) -> Decimal:
    return (close * (1 - TRAILING) / tick).to_integral_value(ROUND_CEILING) * tick


async def test_each_candle_that_moves_the_stop_replaces_the_stop_atomically_and_one_always_rests(
    rising: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    ex = await start_in_process(rising, redis_url, sqlite_url, SYMBOL, **stop_env())
    entry_candle = candle()
    entry = entry_client_order_id(SYMBOL, entry_candle)
    watch: StopWatch | None = None
    try:
        await ex.bus.signal(SYMBOL, "BUY", entry_candle, price="2000")
        first = protection_ids(entry)
        await wait_until(lambda: _is(ex.ledger, first.stop_loss, "SUBMITTED"), 15, "first OCO resting")
        await wait_until(lambda: _is(ex.ledger, first.take_profit, "SUBMITTED"), 15, "first OCO resting")
        watch = StopWatch(rising, entry)
        position = await ex.ledger.open_position(SYMBOL)
        assert position is not None and position.entry_price is not None and position.take_profit is not None
        tick = (await ex.executor.exchange.symbol_info(SYMBOL)).filters.tick_size
        assert [ol["listClientOrderId"] for ol in open_lists(rising, entry)] == [first.list_id]

        for step in (1, 2, 3):
            close = (position.entry_price * (1 + Decimal("0.003") * step) / tick).to_integral_value() * tick
            await closed_kline(ex.redis, entry_candle + step * MINUTE, close)
            market = entry_candle + (step + 1) * MINUTE
            await ex.bus.tick(SYMBOL, str(position.entry_price), ts_event_ms=market + 5)
            made = protection_ids(entry, step + 1)
            await wait_until(lambda m=made: _is(ex.ledger, m.stop_loss, "SUBMITTED"), 15, f"generation {step + 1}")
            # Another tick of the same candle moves nothing: at most one replacement a candle.
            await ex.bus.tick(SYMBOL, str(position.entry_price), ts_event_ms=market + 30_000)
            await wait_until(lambda: _ticks_drained(ex.redis), 10, "ticks handled")
            assert await ex.ledger.order(protection_ids(entry, step + 2).stop_loss) is None
            # After the candle: one resting order, the new generation's single stop at the ledger's stop.
            moved = await ex.ledger.open_position(SYMBOL)
            assert moved is not None and moved.stop_loss == trailed(close, tick)
            [only] = resting(rising, entry)
            assert (only["clientOrderId"], only["orderListId"], Decimal(only["stopPrice"])) == (
                made.stop_loss,
                -1,
                moved.stop_loss,
            )
            assert await ex.ledger.order(made.take_profit) is None  # no take-profit order any more
            previous = protection_ids(entry, step)
            assert order_on(rising, previous.stop_loss)["status"] == "CANCELED"
            assert await _status(ex.ledger, previous.stop_loss) == "CANCELED"
            if step == 1:
                assert order_on(rising, previous.take_profit)["status"] == "CANCELED"  # the list went with its leg
        assert open_lists(rising, entry) == []
        assert rising.state()["client_order_ids"].count(protection_ids(entry, 2).stop_loss) == 1
        assert await ex.bus.alerts("protection_fallback", SYMBOL) == []
        # The stop rests alone now: the snapshot says the take-profit is the bot's to watch.
        assert (await ex.bus.snapshot(SYMBOL) or {}).get("protection") == "exchange_stop"
        assert not [o for o in rising.state()["orders"] if o["clientOrderId"] == exit_client_order_id(entry)]
        await watch.stop()
        watch.assert_one_stop_throughout()

        # The take-profit is the bot's now: a tick at it cancels the stop and sells, once.
        last = protection_ids(entry, 4).stop_loss
        await ex.bus.tick(SYMBOL, str(position.take_profit), ts_event_ms=entry_candle + 5 * MINUTE)
        closed = await wait_until(lambda: _closed(ex.ledger, entry), 20, "closed by the take-profit")
        assert closed.exit_reason == "take_profit" and closed.exit_client_order_id == exit_client_order_id(entry)
        assert order_on(rising, last)["status"] == "CANCELED" and resting(rising, entry) == []
        sells = [o for o in rising.state()["orders"] if o["side"] == "SELL" and Decimal(o["executedQty"]) > 0]
        assert [o["clientOrderId"] for o in sells if entry.split("-", 1)[1] in o["clientOrderId"]] == [
            exit_client_order_id(entry)
        ]
    finally:
        if watch is not None:
            await watch.stop()
        await ex.close()


async def _closed(ledger: Ledger, entry: str) -> Any:
    closed = [p for p in await ledger.closed(SYMBOL) if p.entry_client_order_id == entry]
    return closed[-1] if closed else None


@pytest.mark.parametrize("placed", [False, True], ids=["replace-never-processed", "replace-processed-unanswered"])
async def test_a_kill_during_the_replacement_leaves_one_resting_stop_throughout_and_sells_nothing(
    placed: bool,
    rising: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    env = executor_env(rising, redis_url, sqlite_url, SYMBOL, **stop_env())
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-r1")
    processes.append(first)
    entry_candle = candle()
    entry = entry_client_order_id(SYMBOL, entry_candle)
    old, new = protection_ids(entry), protection_ids(entry, 2)
    watch: StopWatch | None = None
    try:
        await wait_until(lambda: _alerted_times(bus, "reconciled", 1), 30, "first executor ready")
        await bus.signal(SYMBOL, "BUY", entry_candle, price="2000")
        async with ledger_on(sqlite_url) as ledger:
            await wait_until(lambda: _is(ledger, old.take_profit, "SUBMITTED"), 15, "first OCO resting")
            watch = StopWatch(rising, entry)
            position = await ledger.open_position(SYMBOL)
            assert position is not None and position.entry_price is not None
            bought = position.quantity
            # The cancel-replace is held 3 s by the exchange, before it is processed (the kill
            # drops it) or after (the new stop rests, unanswered): the executor is killed with the
            # new stop written and the request under way.
            rising.delay_next(3000, path_prefix="/api/v3/order/cancelReplace", after=placed)
            close = (position.entry_price * Decimal("1.004")).quantize(Decimal("0.01"))
            await closed_kline(redis, entry_candle + MINUTE, close)
            market = entry_candle + 2 * MINUTE
            await bus.tick(SYMBOL, str(position.entry_price), ts_event_ms=market + 5)
            await wait_until(lambda: _is(ledger, new.stop_loss, "INTENT"), 15, "new stop written")
            if placed:
                await wait_until(lambda: _only(rising, entry, new.stop_loss), 10, "new stop placed")
            await asyncio.sleep(0.3)
            first.kill()

            processes.append(start_process(tmp_path, env, "executor-r2"))
            await wait_until(lambda: _alerted_times(bus, "reconciled", 2), 30, "second executor ready")
            for later in range(1, 60):  # ticks of the same candle: the replacement is retried on them
                if await _is(ledger, new.stop_loss, "SUBMITTED"):
                    break
                await bus.tick(SYMBOL, str(position.entry_price), ts_event_ms=market + 5 + later * 500)
                await asyncio.sleep(0.5)
            await wait_until(lambda: _is(ledger, new.stop_loss, "SUBMITTED"), 10, "new stop resting")
            await wait_until(lambda: _only(rising, entry, new.stop_loss), 10, "the new stop alone")
            await watch.stop()
            watch.assert_one_stop_throughout()
            moved = await ledger.open_position(SYMBOL)
            assert moved is not None and moved.status == "OPEN" and moved.quantity == bought
            assert moved.stop_loss is not None and moved.stop_loss > position.stop_loss
            assert Decimal(order_on(rising, new.stop_loss)["stopPrice"]) == moved.stop_loss
            assert await _status(ledger, old.stop_loss) == "CANCELED"
            assert await _status(ledger, old.take_profit) == "CANCELED"
            # Nothing sold: no exit of the bot's, no protection order filled, one new stop placed.
            assert not [o for o in rising.state()["orders"] if o["clientOrderId"] == exit_client_order_id(entry)]
            sold = [o for o in rising.state()["orders"] if o["clientOrderId"].startswith(("PS", "PT"))]
            assert all(Decimal(o["executedQty"]) == 0 for o in sold if entry.split("-", 1)[1] in o["clientOrderId"])
            placed_ids = [o["clientOrderId"] for o in rising.state()["orders"]]
            assert placed_ids.count(new.stop_loss) == 1 and placed_ids.count(old.stop_loss) == 1
            assert await ledger.order(protection_ids(entry, 3).stop_loss) is None
    except AssertionError as e:
        logs = "\n".join(f"--- {p.instance}\n{p.log_text()[-5000:]}" for p in processes)
        raise AssertionError(f"{e}\n{logs}") from e
    finally:
        if watch is not None:
            await watch.stop()
        rising.reset_faults()


async def _alerted_times(bus: Bus, code: str, times: int) -> bool:
    return len(await bus.alerts(code, SYMBOL)) >= times


async def _only(sim: SimulatorProcess, entry: str, client_id: str) -> bool:
    return [o["clientOrderId"] for o in resting(sim, entry)] == [client_id]


async def _ticks_drained(redis: Redis) -> bool:
    groups = await redis.xinfo_groups(streams.ticker_stream(SYMBOL))
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


async def test_a_new_stop_refused_after_the_cancel_leaves_the_levels_to_the_bot_which_sells_on_that_tick(
    rising: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    """A close far above the exchange's price moves the stop above it: the cancel-replace cancels
    the OCO and the new stop is refused (-2021, HTTP 409: it would trigger at once). Nothing rests,
    so the error alert says the bot watches, and the bot sells on that very tick, once."""
    ex = await start_in_process(rising, redis_url, sqlite_url, SYMBOL, **stop_env())
    entry_candle = candle()
    entry = entry_client_order_id(SYMBOL, entry_candle)
    try:
        await ex.bus.signal(SYMBOL, "BUY", entry_candle, price="2000")
        first, new = protection_ids(entry), protection_ids(entry, 2)
        await wait_until(lambda: _is(ex.ledger, first.take_profit, "SUBMITTED"), 15, "first OCO resting")
        position = await ex.ledger.open_position(SYMBOL)
        assert position is not None and position.entry_price is not None
        await closed_kline(ex.redis, entry_candle + MINUTE, position.entry_price * 2)
        await ex.bus.tick(SYMBOL, str(position.entry_price), ts_event_ms=entry_candle + 2 * MINUTE + 5)
        closed = await wait_until(lambda: _closed(ex.ledger, entry), 20, "sold by the bot")
        assert closed.exit_reason == "stop_loss" and closed.exit_client_order_id == exit_client_order_id(entry)
        assert await _status(ex.ledger, new.stop_loss) == "REJECTED"
        assert order_on(rising, first.stop_loss)["status"] == "CANCELED"
        [alert] = await ex.bus.alerts("protection_fallback", SYMBOL)
        assert alert.level == "error" and "-2021" in alert.message
        sells = [o for o in rising.state()["orders"] if o["side"] == "SELL" and Decimal(o["executedQty"]) > 0]
        assert [o["clientOrderId"] for o in sells if entry.split("-", 1)[1] in o["clientOrderId"]] == [
            exit_client_order_id(entry)
        ]
        assert resting(rising, entry) == []
    finally:
        await ex.close()
