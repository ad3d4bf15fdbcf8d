"""The executor service object against the real simulator, redis-server and a SQLite ledger:
entries, protective exits, signal and manual exits, sizing skips and the bot state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from shared.events import now_ms
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from shared.trading.protection import protection_levels
from shared.trading.sizing import round_down_to_step
from tests.executor.harness import MINUTE, InProcess, candle, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL)
    yield handle
    await handle.close()


def sim_orders(sim: SimulatorProcess, client_id: str) -> list[dict]:
    return [o for o in sim.state()["orders"] if o["clientOrderId"] == client_id]


async def open_position(ex: InProcess, sim: SimulatorProcess) -> tuple[str, object]:
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    return entry_client_order_id(SYMBOL, open_time), position


async def test_buy_signal_opens_a_position_under_a_deterministic_client_id(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    open_time = candle()
    event = await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    client_id = f"EB-{SYMBOL}-{open_time}"
    assert position.entry_client_order_id == client_id and position.entry_candle_open_ms == open_time

    [order] = await ex.ledger.orders(SYMBOL)
    assert order.client_order_id == client_id and order.status == "FILLED" and order.signal_event_id == event.event_id
    [on_exchange] = sim_orders(simulator, client_id)
    assert Decimal(on_exchange["executedQty"]) == order.executed_quantity == order.requested_quantity

    # Entry price is the actual average fill; quantity is what the fills credited (commission in base).
    fills = await ex.ledger.fills(client_id)
    bought = sum((f.quantity for f in fills), Decimal(0))
    commission = sum((f.commission for f in fills if f.commission_asset == "BTC"), Decimal(0))
    assert position.quantity == bought - commission and commission > 0
    assert position.entry_price == sum((f.quote_quantity for f in fills), Decimal(0)) / bought
    info = await ex.executor.exchange.symbol_info(SYMBOL)
    params = ex.executor.control.parameters
    assert (position.stop_loss, position.take_profit) == protection_levels(
        position.entry_price, params, info.filters.tick_size
    )

    snapshot = await wait_until(lambda: ex.bus.snapshot(SYMBOL), 5, "snapshot")
    assert snapshot["status"] == "OPEN" and Decimal(snapshot["entry_price"]) == position.entry_price
    assert Decimal(snapshot["stop_loss"]) == position.stop_loss and snapshot["entry_time_ms"] == position.entry_time_ms
    [opened] = await ex.bus.events("position_opened")
    assert opened.payload.client_order_id == client_id and opened.payload.quantity == position.quantity
    statuses = [e.payload.status for e in await ex.bus.events("order_update")]
    assert statuses[0] == "INTENT" and "FILLED" in statuses


async def test_the_same_signal_twice_places_one_order(ex: InProcess, simulator: SimulatorProcess) -> None:
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)  # same event id, delivered again
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    # A second signal event for the same candle (another event id) is the same decision.
    event = ex.bus.signal_event(SYMBOL, "BUY", open_time).model_copy(update={"event_id": "other-id"})
    from shared import streams
    from shared.bus import publish

    await publish(ex.redis, streams.executor_inbox(SYMBOL), event)
    await wait_until(lambda: _inbox_drained(ex), 5, "inbox handled")
    client_id = entry_client_order_id(SYMBOL, open_time)
    assert simulator.state()["client_order_ids"].count(client_id) == 1
    assert len(await ex.ledger.orders(SYMBOL)) == 1


async def _inbox_drained(ex: InProcess) -> bool:
    from shared import streams

    groups = await ex.redis.xinfo_groups(streams.executor_inbox(SYMBOL))
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


@pytest.mark.parametrize("reason", ["stop_loss", "take_profit"])
async def test_protective_exit_sells_the_credited_quantity(
    ex: InProcess, simulator: SimulatorProcess, reason: str
) -> None:
    entry_id, position = await open_position(ex, simulator)
    price = str(getattr(position, reason))
    # Between the levels nothing happens.
    await ex.bus.tick(SYMBOL, str(position.stop_loss + info_tick(position)))
    await ex.bus.tick(SYMBOL, str(position.take_profit - info_tick(position)))
    tick_time = now_ms()
    await ex.bus.tick(SYMBOL, price, ts_event_ms=tick_time)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == reason
    assert closed.exit_candle_open_ms == tick_time // MINUTE * MINUTE
    exit_id = exit_client_order_id(entry_id)
    assert closed.exit_client_order_id == exit_id
    info = await ex.executor.exchange.symbol_info(SYMBOL)
    exit_order = await ex.ledger.order(exit_id)
    assert exit_order.requested_quantity == round_down_to_step(position.quantity, info.filters.market_step)
    assert exit_order.executed_quantity == exit_order.requested_quantity and exit_order.side == "SELL"
    [on_exchange] = sim_orders(simulator, exit_id)
    assert on_exchange["status"] == "FILLED"
    fills = await ex.ledger.fills(exit_id)
    received = sum((f.quote_quantity for f in fills), Decimal(0)) - sum(
        (f.commission for f in fills if f.commission_asset == "USDT"), Decimal(0)
    )
    assert closed.quote_received == received
    assert closed.return_pct == (received - closed.quote_spent) / closed.quote_spent * 100
    [event] = await ex.bus.events("position_closed")
    assert event.payload.exit_reason == reason and event.payload.return_pct == closed.return_pct
    snapshot = await ex.bus.snapshot(SYMBOL)
    assert snapshot["status"] == "FLAT"
    # More ticks beyond the level do not sell again.
    await ex.bus.tick(SYMBOL, price)
    await wait_until(lambda: _ticks_drained(ex), 5, "ticks handled")
    assert len(await ex.ledger.orders(SYMBOL)) == 2


def info_tick(position) -> Decimal:
    return Decimal("0.01")


async def _ticks_drained(ex: InProcess) -> bool:
    from shared import streams

    groups = await ex.redis.xinfo_groups(streams.ticker_stream(SYMBOL))
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


async def test_sell_signal_closes_with_the_signal_candle(ex: InProcess, simulator: SimulatorProcess) -> None:
    entry_id, _ = await open_position(ex, simulator)
    exit_candle = candle()
    await ex.bus.signal(SYMBOL, "SELL", exit_candle)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == "signal" and closed.exit_candle_open_ms == exit_candle
    assert closed.exit_client_order_id == exit_client_order_id(entry_id)


async def test_close_position_command_closes_manually(ex: InProcess, simulator: SimulatorProcess) -> None:
    entry_id, _ = await open_position(ex, simulator)
    await ex.bus.close_position(SYMBOL)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == "manual" and closed.exit_client_order_id == exit_client_order_id(entry_id)
    # A second close, a SELL signal and a stop-loss tick find nothing to close: no other order.
    await ex.bus.close_position(SYMBOL)
    await ex.bus.signal(SYMBOL, "SELL", candle())
    await ex.bus.tick(SYMBOL, str(closed.stop_loss))
    await wait_until(lambda: ex.bus.alerts("exit_ignored"), 5, "exit ignored")
    assert [o.client_order_id for o in await ex.ledger.orders(SYMBOL)] == [entry_id, exit_client_order_id(entry_id)]


async def test_an_order_below_the_minimum_notional_is_never_sent(ex: InProcess, simulator: SimulatorProcess) -> None:
    simulator.set_balances({"USDT": "8"})
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    [alert] = await wait_until(lambda: ex.bus.alerts("entry_skipped"), 10, "entry skipped")
    assert "NOTIONAL" in alert.message and alert.symbol == SYMBOL
    assert entry_client_order_id(SYMBOL, open_time) not in simulator.state()["client_order_ids"]
    assert await ex.ledger.orders(SYMBOL) == []
    assert (await ex.bus.snapshot(SYMBOL))["status"] == "FLAT"


async def test_old_signals_and_stale_market_data_are_skipped(ex: InProcess, simulator: SimulatorProcess) -> None:
    old = candle()
    await ex.bus.signal(SYMBOL, "BUY", old, age_s=120)
    await wait_until(lambda: ex.bus.alerts("entry_skipped"), 10, "old signal skipped")
    stale = candle()
    event = ex.bus.signal_event(SYMBOL, "BUY", stale)
    from shared import streams
    from shared.bus import publish

    await ex.redis.hset(streams.MARKET_FRESHNESS, SYMBOL, str(now_ms() - 120_000))
    await publish(ex.redis, streams.executor_inbox(SYMBOL), event)
    alerts = await wait_until(lambda: _at_least(ex.bus.alerts("entry_skipped"), 2), 10, "stale data skipped")
    assert "old" in alerts[0].message and "market data" in alerts[1].message
    sent = simulator.state()["client_order_ids"]
    assert entry_client_order_id(SYMBOL, old) not in sent and entry_client_order_id(SYMBOL, stale) not in sent


async def _at_least(awaitable, count: int):
    items = await awaitable
    return items if len(items) >= count else None


async def _state(ex: InProcess, state: str) -> bool:
    return ex.executor.control.state == state


async def set_parameters(ex: InProcess, version: int, values: dict[str, str]) -> None:
    """What the api does: store the versioned set, then announce it on control:parameters."""
    from shared import signing, streams
    from shared.codec import dumps

    record = {"version": version, "parameters": values, "changed_at_ms": now_ms(), "changed_by": "test"}
    await ex.redis.set(streams.PARAMETERS, dumps(signing.seal_record(record)))
    announcement = {"type": "parameters_changed", "event_id": f"parameters-{version}"}
    await ex.redis.xadd(streams.CONTROL_PARAMETERS, signing.seal_if_sealed_type(announcement))


async def test_parameters_follow_changes_and_refuse_invalid_sets(ex: InProcess, simulator: SimulatorProcess) -> None:
    await set_parameters(ex, 5, {"STOP_LOSS_PERCENTAGE": "0.03", "TAKE_PROFIT_PERCENTAGE": "0.06"})
    await wait_until(lambda: _version(ex, 5), 5, "version 5 applied")
    await set_parameters(ex, 6, {"STOP_LOSS_PERCENTAGE": "0.2", "TAKE_PROFIT_PERCENTAGE": "0.1"})
    [alert] = await wait_until(lambda: ex.bus.alerts("parameters_refused"), 5, "invalid set refused")
    assert "STOP_LOSS_PERCENTAGE" in alert.message and "version 6" in alert.message
    assert ex.executor.control.parameters_version == 5
    assert Decimal("0.03") == ex.executor.control.parameters.STOP_LOSS_PERCENTAGE
    _, position = await open_position(ex, simulator)
    info = await ex.executor.exchange.symbol_info(SYMBOL)
    assert (
        position.stop_loss
        == protection_levels(position.entry_price, ex.executor.control.parameters, info.filters.tick_size)[0]
    )
    assert position.stop_loss < position.entry_price * Decimal("0.971")


async def _version(ex: InProcess, version: int) -> bool:
    return ex.executor.control.parameters_version == version
