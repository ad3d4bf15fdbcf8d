"""``ENTRY_ORDER=limit_maker`` against the simulator and a real redis: a LIMIT_MAKER entry at the
best bid filled in parts as maker, one cancelled at its timeout with what filled (and protected),
one timed out unfilled with and without the MARKET fallback, and ``python -m services.executor``
SIGKILLed while its entry rests.

The simulator replays a flat BTCUSDT (100000, no wicks) at 1x with maker and taker rates apart,
and fills a resting order at most ``MAKER_FILL_QUOTE`` of quote per walk step (about one a
second): an entry at the bid fills in parts, one 5 % below it never fills. Without wicks every
step is at the bid, whenever in the minute the entry is priced (with wicks, an entry priced on the
way up from the low met the walk again only about the next low, a minute later). The timeout
counts market time: the test publishes a tick stamped at the deadline (no market_data runs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.trading.ids import entry_client_order_id, fallback_client_order_id, protection_ids
from shared.trading.limit_entry import deadline_ms
from tests.exchange_sim.conftest import write_candles
from tests.exchange_sim.test_sim_oco import START
from tests.executor.harness import (
    MINUTE,
    Bus,
    ExecutorProcess,
    InProcess,
    Ledger,
    candle,
    executor_env,
    ledger_on,
    start_in_process,
    start_process,
    wait_until,
)
from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
MAKER_RATE, TAKER_RATE = D("0.0002"), D("0.001")
MAKER_FILL_QUOTE = "20"
LIMIT = {"ENTRY_ORDER": "limit_maker", "ENTRY_LIMIT_TIMEOUT_CANDLES": "2"}
SMALL = {"CAPITAL_ALLOCATION": "0.01"}  # a ~50 USDT entry: a few walk steps fill it
FAR = {"ENTRY_LIMIT_OFFSET_PERCENTAGE": "0.05"}  # 5 % below the bid: never reached


def flat(price: int, count: int = 4000) -> list[tuple[int, str, str, str, str, str]]:
    """Candles at ``price`` throughout (open = high = low = close): every walk step at one price."""
    text = f"{price:.2f}"
    return [(START + i * MINUTE, text, text, text, text, "3.5") for i in range(count)]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder: Path = tmp_path_factory.mktemp("flat")
    data = [write_candles(folder / "BTCUSDT_1m_flat.csv", flat(100_000))]
    extra = {
        "EXCHANGE_SIM_MAKER_COMMISSION": str(MAKER_RATE),
        "EXCHANGE_SIM_TAKER_COMMISSION": str(TAKER_RATE),
        "EXCHANGE_SIM_MAKER_FILL_QUOTE": MAKER_FILL_QUOTE,
    }
    with start_simulator(folder, data=data, speed=1, history=10, extra_env=extra) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fresh_account(simulator: SimulatorProcess) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})


@pytest.fixture
async def start(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[Any]:
    handles: list[InProcess] = []

    async def starting(**extra: str) -> InProcess:
        handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, **extra)
        handles.append(handle)
        return handle

    yield starting
    for handle in handles:
        await handle.close()


def on_exchange(sim: SimulatorProcess, client_id: str) -> list[dict[str, Any]]:
    return [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]


def trades_of(sim: SimulatorProcess, client_id: str) -> list[dict[str, Any]]:
    [order] = on_exchange(sim, client_id)
    return [t for t in sim.state()["trades"] if t["orderId"] == order["orderId"]]


async def status(ledger: Ledger, client_id: str, *wanted: str) -> bool:
    order = await ledger.order(client_id)
    return order is not None and order.status in wanted


async def time_out(bus: Bus, open_time: int, candles: int = 2) -> None:
    """The market reaches the limit entry's deadline: a tick stamped with it (exchange time)."""
    await bus.tick(SYMBOL, "100000", deadline_ms(open_time, MINUTE, candles))


async def test_a_limit_entry_at_the_bid_fills_in_parts_as_maker_and_opens_protected(
    start: Any, simulator: SimulatorProcess
) -> None:
    ex = await start(**LIMIT, **SMALL)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 30, "position OPEN")
    order = await ex.ledger.order(client_id)
    assert order.order_type == "LIMIT_MAKER" and order.status == "FILLED"
    [placed] = on_exchange(simulator, client_id)
    assert placed["type"] == "LIMIT_MAKER" and D(placed["price"]) == D("100000")  # at the bid
    # The ledger keeps the price it rested at and the best bid it was priced from (at the bid: equal).
    assert order.limit_price == D(placed["price"]) and order.best_bid == order.limit_price
    trades = trades_of(simulator, client_id)
    fills = await ex.ledger.fills(client_id)
    assert len(trades) > 1 and sorted(f.trade_id for f in fills) == sorted(t["id"] for t in trades)
    assert all(t["isMaker"] for t in trades)
    # The maker rate of the account, not the taker's: commission = qty x 0.02 %, in base.
    for fill in fills:
        assert fill.commission == (fill.quantity * MAKER_RATE).quantize(D("0.00000001"))
    bought = sum((f.quantity for f in fills), D(0))
    assert position.quantity == bought - sum((f.commission for f in fills), D(0))
    assert position.entry_price == D(placed["price"])  # every fill at the limit price
    assert position.stop_loss is not None and position.stop_loss < position.entry_price
    assert simulator.state()["client_order_ids"].count(client_id) == 1


async def test_a_partly_filled_limit_entry_is_cancelled_at_its_timeout_and_opens_what_filled(
    start: Any, simulator: SimulatorProcess
) -> None:
    ex = await start(**LIMIT, PROTECTION="exchange")  # a ~5000 USDT entry: hundreds of walk steps
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "PARTIALLY_FILLED"), 30, "entry partly filled")
    await time_out(ex.bus, open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 30, "position OPEN")
    order = await ex.ledger.order(client_id)
    assert order.status == "CANCELED" and 0 < order.executed_quantity < order.requested_quantity
    [placed] = on_exchange(simulator, client_id)
    assert placed["status"] == "CANCELED" and D(placed["executedQty"]) == order.executed_quantity
    fills = await ex.ledger.fills(client_id)
    assert sorted(f.trade_id for f in fills) == sorted(t["id"] for t in trades_of(simulator, client_id))
    assert position.quantity == order.executed_quantity - sum((f.commission for f in fills), D(0))
    # Protected like any position: the OCO for the credited quantity rests on the exchange.
    made = protection_ids(client_id)
    await wait_until(lambda: status(ex.ledger, made.stop_loss, "SUBMITTED"), 20, "OCO resting")
    [stop] = on_exchange(simulator, made.stop_loss)
    assert D(stop["origQty"]) <= position.quantity
    # Each leg keeps its price: the stop's trigger, the take-profit's limit.
    stop_leg, take_leg = await ex.ledger.order(made.stop_loss), await ex.ledger.order(made.take_profit)
    assert stop_leg.stop_price == D(stop["stopPrice"]) == position.stop_loss
    [take] = on_exchange(simulator, made.take_profit)
    assert take_leg.limit_price == D(take["price"]) == position.take_profit
    ended = await wait_until(lambda: ex.bus.alerts("entry_limit_ended", SYMBOL), 10, "entry_limit_ended alert")
    assert client_id in ended[0].message and "timeout" in ended[0].message


async def test_a_partly_filled_limit_entry_with_the_fallback_on_opens_what_filled_and_buys_nothing_more(
    start: Any, simulator: SimulatorProcess
) -> None:
    ex = await start(**LIMIT, ENTRY_LIMIT_FALLBACK="true")
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "PARTIALLY_FILLED"), 30, "entry partly filled")
    await time_out(ex.bus, open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 30, "position OPEN")
    order = await ex.ledger.order(client_id)
    assert order.status == "CANCELED" and 0 < order.executed_quantity < order.requested_quantity
    assert position.entry_client_order_id == client_id
    # The fallback replaces only an entry that bought nothing.
    fallback = fallback_client_order_id(client_id)
    assert await ex.ledger.order(fallback) is None and fallback not in simulator.state()["client_order_ids"]


async def test_a_partly_filled_limit_entry_is_cancelled_when_the_price_falls_to_its_stop(
    start: Any, simulator: SimulatorProcess
) -> None:
    ex = await start(**LIMIT)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "PARTIALLY_FILLED"), 30, "entry partly filled")
    # Before its timeout (the exchange's time now), a price below the stop the filled part would have.
    await ex.bus.tick(SYMBOL, "90000")
    await wait_until(lambda: status(ex.ledger, client_id, "CANCELED"), 30, "entry cancelled at the stop")
    [placed] = on_exchange(simulator, client_id)
    order = await ex.ledger.order(client_id)
    assert placed["status"] == "CANCELED" and D(placed["executedQty"]) == order.executed_quantity > 0
    ended = await wait_until(lambda: ex.bus.alerts("entry_limit_ended", SYMBOL), 10, "entry_limit_ended alert")
    assert client_id in ended[-1].message and "stop_reached" in ended[-1].message
    # What filled opened, and the stop the price is through sells it: on that price, or the next.
    await wait_until(lambda: _opened(ex), 30, "position opened")
    await ex.bus.tick(SYMBOL, "90000")
    closed = await wait_until(lambda: ex.ledger.closed(SYMBOL), 30, "position closed by its stop")
    mine = [p for p in closed if p.entry_client_order_id == client_id]
    assert mine and mine[0].exit_reason == "stop_loss"


async def test_a_limit_entry_timed_out_unfilled_fails_without_fallback(start: Any, simulator: SimulatorProcess) -> None:
    ex = await start(**LIMIT, **FAR)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "SUBMITTED"), 20, "entry resting")
    [placed] = on_exchange(simulator, client_id)
    assert D(placed["price"]) == D("95000")  # 5 % below the bid
    order = await ex.ledger.order(client_id)
    assert (order.limit_price, order.best_bid) == (D("95000"), D("100000"))  # the bid it was priced from
    # One candle before the deadline nothing happens.
    await ex.bus.tick(SYMBOL, "100000", deadline_ms(open_time, MINUTE, 2) - MINUTE)
    await time_out(ex.bus, open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "CANCELED"), 20, "entry cancelled")
    assert on_exchange(simulator, client_id)[0]["status"] == "CANCELED"
    await wait_until(lambda: _flat(ex), 10, "no position")
    fallback = fallback_client_order_id(client_id)
    assert await ex.ledger.order(fallback) is None and not on_exchange(simulator, fallback)
    assert D(simulator.state()["balances"]["USDT"]["free"]) == D(10000)


async def test_a_limit_entry_timed_out_unfilled_falls_back_to_market(start: Any, simulator: SimulatorProcess) -> None:
    ex = await start(**LIMIT, **FAR, **SMALL, ENTRY_LIMIT_FALLBACK="true")
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: status(ex.ledger, client_id, "SUBMITTED"), 20, "entry resting")
    await time_out(ex.bus, open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 30, "fallback position OPEN")
    fallback = fallback_client_order_id(client_id)
    assert position.entry_client_order_id == fallback
    assert (await ex.ledger.order(client_id)).status == "CANCELED"
    order = await ex.ledger.order(fallback)
    assert order.order_type == "MARKET" and order.status == "FILLED"
    fills = await ex.ledger.fills(fallback)
    assert fills and all(f.commission == (f.quantity * TAKER_RATE).quantize(D("0.00000001")) for f in fills)
    assert not [t for t in trades_of(simulator, fallback) if t["isMaker"]]
    # The signal handled again (a restart, a redelivery) sends nothing more.
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await ex.bus.tick(SYMBOL, "100000", deadline_ms(open_time, MINUTE, 2) + MINUTE)
    state = simulator.state()
    assert state["client_order_ids"].count(client_id) == 1 and state["client_order_ids"].count(fallback) == 1


async def _opened(ex: InProcess) -> bool:
    """The entry is over: the position is OPEN, or already being sold or sold."""
    position = await ex.ledger.active(SYMBOL)
    return position is None or position.status != "OPENING"


async def _flat(ex: InProcess) -> bool:
    return await ex.ledger.active(SYMBOL) is None


async def test_an_executor_killed_while_its_limit_entry_rests_finds_it_and_its_fills_once_at_restart(
    simulator: SimulatorProcess,
    redis: Redis,
    redis_url: str,
    sqlite_url: str,
    tmp_path: Path,
    processes: list[ExecutorProcess],
) -> None:
    env = executor_env(simulator, redis_url, sqlite_url, SYMBOL, **LIMIT)
    bus = Bus(redis)
    first = start_process(tmp_path, env, "executor-a")
    processes.append(first)
    await wait_until(lambda: _alerted(bus, "reconciled", 1), 60, "first executor ready")  # a loaded machine
    # The signal's candle is taken once the executor is ready: the process starts in seconds, and
    # a candle taken before a minute boundary that passes meanwhile is two candles old at the
    # exchange when the signal comes, so the entry is refused (SIGNAL_MAX_AGE_CANDLES=1).
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await bus.signal(SYMBOL, "BUY", open_time)
    async with ledger_on(sqlite_url) as ledger:
        await wait_until(lambda: status(ledger, client_id, "PARTIALLY_FILLED"), 60, "entry partly filled")
        first.kill()
        # A LIMIT_MAKER the moving book refused (-2010) is sent again under its id: count what was sent.
        sent = simulator.state()["client_order_ids"].count(client_id)
        before = len(trades_of(simulator, client_id))
        await wait_until(lambda: _more_trades(simulator, client_id, before), 20, "fills while nobody runs")

        second = start_process(tmp_path, env, "executor-b")
        processes.append(second)
        await wait_until(lambda: _alerted(bus, "reconciled", 2), 60, "second executor reconciled")
        # The resting entry is found, not sent again; its fills so far are recorded once.
        assert simulator.state()["client_order_ids"].count(client_id) == sent == 1
        assert on_exchange(simulator, client_id)[0]["status"] == "PARTIALLY_FILLED"
        position = await ledger.active(SYMBOL)
        assert position is not None and position.status == "OPENING"
        await time_out(bus, open_time)
        position = await wait_until(lambda: ledger.open_position(SYMBOL), 60, "position OPEN after restart")
        order = await ledger.order(client_id)
        assert order.status == "CANCELED"
        fills = await ledger.fills(client_id)
        trades = trades_of(simulator, client_id)
        assert len(trades) > before
        assert sorted(f.trade_id for f in fills) == sorted(t["id"] for t in trades)
        assert len({f.trade_id for f in fills}) == len(fills)
        assert order.executed_quantity == sum((D(t["qty"]) for t in trades), D(0))
        assert position.quantity == order.executed_quantity - sum((f.commission for f in fills), D(0))
        opened = [e for e in await bus.events("position_opened") if e.payload.client_order_id == client_id]
        assert len(opened) == 1


async def _more_trades(sim: SimulatorProcess, client_id: str, count: int) -> bool:
    return len(trades_of(sim, client_id)) > count


async def _alerted(bus: Bus, code: str, count: int) -> bool:
    return len(await bus.alerts(code, SYMBOL)) >= count
