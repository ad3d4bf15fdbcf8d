"""Exchange faults injected in the real simulator: unknown outcomes, rate limits, clock skew,
insufficient balance. The exchange must end up with exactly one order per decision."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.executor.harness import InProcess, candle, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"
ORDER_PATH = "/api/v3/order"


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL)
    yield handle
    await handle.close()
    simulator.reset_faults()


def order_requests(sim: SimulatorProcess) -> int:
    return int(sim.state()["requests"].get("POST /api/v3/order", 0))


def orders_on_exchange(sim: SimulatorProcess, client_id: str) -> list[dict]:
    return [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]


async def test_5xx_after_execution_is_settled_by_query_without_a_second_order(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    simulator.fail_next(1, status=503, execute=True, path_prefix=ORDER_PATH)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    assert position.entry_client_order_id == client_id
    assert simulator.state()["client_order_ids"].count(client_id) == 1
    assert len(orders_on_exchange(simulator, client_id)) == 1
    order = await ex.ledger.order(client_id)
    assert (
        order.status == "FILLED" and order.exchange_order_id == orders_on_exchange(simulator, client_id)[0]["orderId"]
    )
    # The FULL response never arrived: the fills came from myTrades.
    assert len(await ex.ledger.fills(client_id)) >= 1
    assert len(await ex.bus.alerts("order_unknown")) == 1 and not await ex.bus.alerts("order_resent")
    statuses = [e.payload.status for e in await ex.bus.events("order_update")]
    assert statuses[:2] == ["INTENT", "UNKNOWN"] and statuses[-1] == "FILLED"


async def test_5xx_without_execution_is_resent_once_with_the_same_id(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    before = order_requests(simulator)
    simulator.fail_next(1, status=500, execute=False, path_prefix=ORDER_PATH)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    state = simulator.state()
    assert len(orders_on_exchange(simulator, client_id)) == 1
    # One order request was answered 500 before reaching the engine, the query found nothing,
    # and exactly one more request with the same id placed the order.
    assert order_requests(simulator) - before == 2 and state["client_order_ids"].count(client_id) == 1
    assert await ex.bus.alerts("order_resent")


async def test_unknown_outcome_that_queries_cannot_settle_is_settled_later(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    # The order executes but its answer and the next five queries fail: still no second order.
    simulator.fail_next(6, status=502, execute=True, path_prefix=ORDER_PATH)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.bus.alerts("order_unsettled"), 10, "unsettled alert")
    assert (await ex.ledger.order(client_id)).status == "UNKNOWN"
    assert (await ex.bus.snapshot(SYMBOL))["status"] == "OPENING"
    # Another BUY for a later candle is refused while the first one is unsettled.
    await ex.bus.signal(SYMBOL, "BUY", candle())
    # The periodic settling (and fresh ticks) query again once the exchange answers.
    await ex.bus.tick(SYMBOL, "100000")
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    assert position.entry_client_order_id == client_id
    assert len(orders_on_exchange(simulator, client_id)) == 1
    assert simulator.state()["client_order_ids"].count(client_id) == 1
    skipped = await ex.bus.alerts("entry_skipped")
    assert skipped and "OPENING" in skipped[0].message


async def test_retry_after_is_honoured_before_the_next_order_request(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    before = order_requests(simulator)
    simulator.throttle_next(1, status=429, retry_after=1, path_prefix=ORDER_PATH)
    open_time = candle()
    started = time.monotonic()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    assert time.monotonic() - started >= 1.0
    [alert] = await ex.bus.alerts("rate_limited")
    assert "Retry-After" in alert.message
    assert order_requests(simulator) - before == 2
    assert len(orders_on_exchange(simulator, entry_client_order_id(SYMBOL, open_time))) == 1


async def test_a_long_ban_refuses_the_order_without_sending_more(ex: InProcess, simulator: SimulatorProcess) -> None:
    before = order_requests(simulator)
    simulator.throttle_next(1, status=418, retry_after=60, path_prefix=ORDER_PATH)
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    order = await wait_until(
        lambda: _status(ex, entry_client_order_id(SYMBOL, open_time), "REJECTED"), 10, "order refused"
    )
    assert "retry after 60" in order.reason
    assert order_requests(simulator) - before == 1
    assert ex.executor.exchange.blocked_for_s > 50
    assert (await ex.bus.snapshot(SYMBOL))["status"] == "FLAT"


async def _status(ex: InProcess, client_id: str, status: str):
    order = await ex.ledger.order(client_id)
    return order if order is not None and order.status == status else None


async def test_timestamp_errors_resync_the_clock_and_succeed(ex: InProcess, simulator: SimulatorProcess) -> None:
    try:
        # The exchange's clock jumps 30 s ahead: the balance read before sizing fails with -1021,
        # the offset is measured again, the read is repeated and the order goes through.
        simulator.set_clock_offset(30_000)
        open_time = candle()
        await ex.bus.signal(SYMBOL, "BUY", open_time)
        position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
        assert abs(ex.client.timestamp_offset - 30_000) < 2_000
        # Now it jumps back: the exit order itself gets -1021 and is sent again with the same id.
        before = order_requests(simulator)
        simulator.set_clock_offset(-30_000)
        await ex.bus.tick(SYMBOL, str(position.stop_loss))
        [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
        assert abs(ex.client.timestamp_offset + 30_000) < 2_000
    finally:
        simulator.set_clock_offset(0)
    exit_id = exit_client_order_id(entry_client_order_id(SYMBOL, open_time))
    assert closed.exit_client_order_id == exit_id
    assert order_requests(simulator) - before == 2
    assert len(orders_on_exchange(simulator, exit_id)) == 1
    [alert] = await ex.bus.alerts("clock_skew")
    assert exit_id in alert.message


async def test_insufficient_balance_is_an_alert_and_the_executor_goes_on(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    entry_open = candle()
    await ex.bus.signal(SYMBOL, "BUY", entry_open)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    entry_id = entry_client_order_id(SYMBOL, entry_open)
    simulator.set_balances({"BTC": "0"})  # the coins left the account behind the bot's back
    await ex.bus.tick(SYMBOL, str(position.stop_loss))
    [alert] = await wait_until(lambda: ex.bus.alerts("insufficient_balance"), 10, "-2010 alert")
    assert "insufficient balance" in alert.message.lower() and alert.level == "error"
    exit_id = exit_client_order_id(entry_id)
    assert (await ex.ledger.order(exit_id)).status == "REJECTED"
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    # The executor is alive: once the coins are back, the next trigger sells with the same exit id.
    simulator.set_balances({"BTC": str(position.quantity)})
    await ex.bus.close_position(SYMBOL)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == "manual" and closed.exit_client_order_id == exit_id
    assert len(orders_on_exchange(simulator, exit_id)) == 1
    assert ex.executor.control.state == "running"


async def test_a_timed_out_order_is_settled_by_query(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, ORDER_TIMEOUT_S="1")
    try:
        # The order executes at once; its answer comes after the client gave up waiting.
        simulator.delay_next(3_000, path_prefix=ORDER_PATH, after=True)
        open_time = candle()
        client_id = entry_client_order_id(SYMBOL, open_time)
        await handle.bus.signal(SYMBOL, "BUY", open_time)
        await wait_until(lambda: handle.ledger.open_position(SYMBOL), 10, "position OPEN")
        [alert] = await handle.bus.alerts("order_unknown")
        assert "timed out" in alert.message
        assert len(orders_on_exchange(simulator, client_id)) == 1
        assert simulator.state()["client_order_ids"].count(client_id) == 1
    finally:
        await handle.close()
        simulator.reset_faults()
