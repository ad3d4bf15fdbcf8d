"""An exit once decided stays decided: a refusal that did not execute keeps it pending and it is
sent again (after Retry-After, bounded backoff) under the same client id and with the reason that
triggered it, without waiting for another price; a definite refusal is an error the operator sees
and sells nothing twice.

The executor service object runs against the real simulator (faults injected through its admin
endpoint), a real redis-server and a SQLite ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from shared import streams
from shared.events import now_ms
from shared.trading.ids import exit_client_order_id
from tests.executor.harness import MINUTE, InProcess, candle, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"
ORDER_PATH = "/api/v3/order"


def sells(sim: SimulatorProcess, entry_id: str) -> list[dict]:
    """The SELL orders the exchange holds for the position of ``entry_id`` (any of its exit ids)."""
    return [o for o in sim.state()["orders"] if o["side"] == "SELL" and o["clientOrderId"].endswith(entry_id[2:])]


def sold(sim: SimulatorProcess, entry_id: str) -> list[dict]:
    return [o for o in sells(sim, entry_id) if Decimal(o["executedQty"]) > 0]


async def start(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> InProcess:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    # Queries 0.3 s apart leave the test time to arm the second fault after the first was hit;
    # the periodic settling is far away, so only the pending exit's own retry can sell.
    return await start_in_process(
        simulator,
        redis_url,
        sqlite_url,
        SYMBOL,
        ORDER_QUERY_DELAY_S="0.3",
        RECONCILE_INTERVAL_S="120",
    )


async def open_position(ex: InProcess):
    await ex.bus.signal(SYMBOL, "BUY", candle())
    return await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    handle = await start(simulator, redis_url, sqlite_url)
    yield handle
    await handle.close()
    simulator.reset_faults()


@pytest.mark.parametrize("state", ["running", "stopped"])
async def test_a_stop_loss_refused_before_execution_is_sent_again_without_another_price(
    ex: InProcess, simulator: SimulatorProcess, state: str
) -> None:
    position = await open_position(ex)
    if state == "stopped":
        # Stopped keeps the stop-loss, and the retry of a stop-loss already decided.
        await ex.bus.command("stop")
        await wait_until(lambda: asyncio.sleep(0, ex.executor.control.state == "stopped"), 5, "stopped")
    simulator.fail_next(1, status=503, execute=False, path_prefix=ORDER_PATH)
    crossed = now_ms()
    await ex.bus.tick(SYMBOL, str(position.stop_loss - Decimal("10")), ts_event_ms=crossed)
    # The 5xx is hit by the exit order; the next request on the order path then gets a 429 whose
    # Retry-After is longer than an order may wait for (MAX_RETRY_AFTER_WAIT_S=5).
    await wait_until(lambda: asyncio.sleep(0, simulator.state()["faults"]["fail"] is None), 10, "5xx hit")
    simulator.throttle_next(1, status=429, retry_after=6, path_prefix=ORDER_PATH)
    started = time.monotonic()
    # No further price: the exit must go through on its own.
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 30, "position CLOSED by the pending exit")
    assert simulator.state()["faults"]["throttle"] is None  # the 429 was hit
    assert time.monotonic() - started < 25
    exit_id = exit_client_order_id(position.entry_client_order_id)
    assert closed.exit_reason == "stop_loss"
    assert closed.exit_candle_open_ms == crossed // MINUTE * MINUTE
    assert closed.exit_client_order_id == exit_id
    [sale] = sells(simulator, position.entry_client_order_id)
    assert sale["clientOrderId"] == exit_id and Decimal(sale["executedQty"]) == position.quantity
    exits = [o for o in await ex.ledger.orders(SYMBOL) if o.purpose == "exit"]
    assert [o.client_order_id for o in exits] == [exit_id]
    assert await ex.bus.alerts("exit_pending")
    # Only the exit's own retry sold: the one price is still the newest on the stream.
    assert await ex.redis.xlen(streams.ticker_stream(SYMBOL)) == 1


async def test_a_definite_refusal_is_an_error_the_operator_sees_and_sells_nothing_twice(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    ex = await start(simulator, redis_url, sqlite_url)
    try:
        position = await open_position(ex)
        simulator.set_balances({"BTC": "0"})  # the coins left the account behind the bot's back
        await ex.bus.tick(SYMBOL, str(position.stop_loss))
        [refused] = await wait_until(lambda: ex.bus.alerts("exit_refused"), 10, "exit_refused alert")
        assert refused.level == "error" and "insufficient balance" in refused.message.lower()
        assert "not sold" in refused.message and "close" in refused.message
        exit_id = exit_client_order_id(position.entry_client_order_id)
        assert exit_id in refused.message
        assert (await ex.bus.snapshot(SYMBOL))["status"] == "OPEN"
        # Not retried on a timer: a refusal that will not change by itself is not hammered.
        before = int(simulator.state()["requests"].get("POST /api/v3/order", 0))
        await asyncio.sleep(1.5)
        assert int(simulator.state()["requests"].get("POST /api/v3/order", 0)) == before
        assert not sold(simulator, position.entry_client_order_id)
        # A price still beyond the stop tries again (same id) and says so again.
        await ex.bus.tick(SYMBOL, str(position.stop_loss))
        await wait_until(lambda: _count(ex, 2), 10, "second exit_refused alert")
        # Once the coins are back the next trigger sells, exactly once.
        simulator.set_balances({"BTC": str(position.quantity)})
        await asyncio.sleep(0.6)  # EXIT_RETRY_S=0.5
        await ex.bus.tick(SYMBOL, str(position.stop_loss))
        [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
        assert closed.exit_client_order_id == exit_id
        [sale] = sold(simulator, position.entry_client_order_id)
        assert sale["clientOrderId"] == exit_id and Decimal(sale["executedQty"]) == position.quantity
        await asyncio.sleep(1.0)
        assert len(sold(simulator, position.entry_client_order_id)) == 1
    finally:
        await ex.close()
        simulator.reset_faults()


async def _count(ex: InProcess, n: int) -> bool:
    return len(await ex.bus.alerts("exit_refused")) >= n


async def test_a_pending_exit_survives_a_restart(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> None:
    ex = await start(simulator, redis_url, sqlite_url)
    try:
        position = await open_position(ex)
        # A long ban refuses the stop-loss before execution; its retry would wait a minute.
        simulator.throttle_next(1, status=418, retry_after=60, path_prefix=ORDER_PATH)
        crossed = now_ms()
        await ex.bus.tick(SYMBOL, str(position.stop_loss), ts_event_ms=crossed)
        await wait_until(lambda: ex.bus.alerts("exit_pending"), 10, "exit pending")
        assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    finally:
        await ex.close()
    # The next executor (its own rate-limit gate, the ban over for it) finds the decided exit in
    # the ledger and sends it without a price.
    again = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, RECONCILE_INTERVAL_S="120")
    try:
        [closed] = await wait_until(lambda: again.ledger.closed(SYMBOL), 15, "position CLOSED after the restart")
        assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == crossed // MINUTE * MINUTE
        assert closed.exit_client_order_id == exit_client_order_id(position.entry_client_order_id)
        [sale] = sold(simulator, position.entry_client_order_id)
        assert Decimal(sale["executedQty"]) == position.quantity
        assert await again.redis.xlen(streams.ticker_stream(SYMBOL)) == 1
    finally:
        await again.close()
        simulator.reset_faults()
