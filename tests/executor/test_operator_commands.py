"""Operator commands against the real executor, simulator and redis-server: the three bot states
never strand a position, every command is answered under its id, close-all sells everything."""

from __future__ import annotations

import asyncio

from shared.control import send_command, update_parameters
from shared.events import CommandOutcome
from shared.parameters import StrategyParameters
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.executor.harness import InProcess, start_in_process, wait_until
from tests.executor.test_executor_orders import candle, ex  # noqa: F401 - the fixture
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"


async def open_position(ex: InProcess, symbol: str = SYMBOL):
    open_time = candle()
    await ex.bus.signal(symbol, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(symbol), 10, f"{symbol} position OPEN")
    return entry_client_order_id(symbol, open_time), position


async def answers(ex: InProcess, command_id: str) -> list[CommandOutcome]:
    return [e.payload for e in await ex.bus.events("command_outcome") if e.payload.command_id == command_id]


async def answer(ex: InProcess, command_id: str, outcome: str, symbol: str | None = None) -> CommandOutcome:
    async def find() -> CommandOutcome | None:
        found = [
            a for a in await answers(ex, command_id) if a.outcome == outcome and (symbol is None or a.symbol == symbol)
        ]
        return found[0] if found else None

    return await wait_until(find, 10, f"{outcome} answer to {command_id}")


async def command(ex: InProcess, name: str, symbol: str | None = None, symbols: tuple[str, ...] = ()) -> str:
    return await send_command(ex.redis, name, symbol, "test", symbols=symbols)


async def test_stopped_keeps_stop_loss_take_profit_and_manual_close(ex: InProcess, simulator: SimulatorProcess) -> None:
    entry_id, position = await open_position(ex)
    stop_id = await command(ex, "stop")
    done = await answer(ex, stop_id, "done")
    assert "stop-loss, take-profit and manual close keep working" in done.reason and SYMBOL in done.reason
    assert ex.executor.control.state == "stopped"

    # A strategy exit is not followed while stopped...
    await ex.bus.signal(SYMBOL, "SELL", candle())
    await wait_until(lambda: ex.bus.alerts("exit_blocked"), 5, "SELL signal not followed")
    assert exit_client_order_id(entry_id) not in simulator.state()["client_order_ids"]
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    # ...but a price crossing the stop-loss closes the position.
    await ex.bus.tick(SYMBOL, str(position.stop_loss))
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "stop-loss exit while stopped")
    assert closed.exit_reason == "stop_loss" and closed.exit_client_order_id == exit_client_order_id(entry_id)

    # Close position works while stopped too, and its answers follow the order.
    await command(ex, "start")
    entry_id, _ = await open_position(ex)
    await command(ex, "stop")
    await wait_until(lambda: _state(ex, "stopped"), 5, "stopped")
    close_id = await command(ex, "close_position", SYMBOL)
    done = await answer(ex, close_id, "done", SYMBOL)
    closed = [p for p in await ex.ledger.closed(SYMBOL) if p.entry_client_order_id == entry_id]
    assert closed and closed[0].exit_reason == "manual"
    assert "closed: sold" in done.reason
    outcomes = [a.outcome for a in await answers(ex, close_id)]
    assert outcomes == ["accepted", "done"], outcomes
    accepted = (await answers(ex, close_id))[0]
    assert exit_client_order_id(entry_id) in accepted.reason


async def test_entries_paused_opens_nothing_but_still_exits(ex: InProcess, simulator: SimulatorProcess) -> None:
    _, position = await open_position(ex)
    pause_id = await command(ex, "pause_entries")
    assert "no new entries" in (await answer(ex, pause_id, "done")).reason
    await ex.bus.tick(SYMBOL, str(position.take_profit))
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "take-profit while paused")
    assert closed.exit_reason == "take_profit"
    blocked = candle()
    await ex.bus.signal(SYMBOL, "BUY", blocked)
    [alert] = await wait_until(lambda: ex.bus.alerts("entry_skipped"), 10, "entry skipped while paused")
    assert "paused" in alert.message
    assert entry_client_order_id(SYMBOL, blocked) not in simulator.state()["client_order_ids"]
    assert await ex.ledger.active(SYMBOL) is None


async def test_a_refused_close_says_why_every_time(ex: InProcess, simulator: SimulatorProcess) -> None:
    # No position: refused, and a second identical request is answered too (no throttling).
    first = await command(ex, "close_position", SYMBOL)
    second = await command(ex, "close_position", SYMBOL)
    for command_id in (first, second):
        refused = await answer(ex, command_id, "refused", SYMBOL)
        assert refused.reason == "no position" and refused.command == "close_position"

    # The exchange refuses the sell (the base asset is gone): the answer carries its reason.
    entry_id, _ = await open_position(ex)
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    close_id = await command(ex, "close_position", SYMBOL)
    refused = await answer(ex, close_id, "refused", SYMBOL)
    assert exit_client_order_id(entry_id) in refused.reason and "insufficient balance" in refused.reason.lower()
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"


async def test_close_all_stops_and_sells_every_position(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    ex = await start_in_process(simulator, redis_url, sqlite_url, "BTCUSDT,ETHUSDT")
    try:
        btc_entry, _ = await open_position(ex, "BTCUSDT")
        close_id = await command(ex, "close_all", symbols=("BTCUSDT", "ETHUSDT"))
        accepted = await answer(ex, close_id, "accepted")
        assert accepted.symbol is None and "BTCUSDT" in accepted.reason and accepted.command == "close_all"
        btc = await answer(ex, close_id, "done", "BTCUSDT")
        eth = await answer(ex, close_id, "done", "ETHUSDT")
        assert btc.reason.startswith("closed: sold") and eth.reason == "no position"
        [closed] = await ex.ledger.closed("BTCUSDT")
        assert closed.exit_reason == "manual" and closed.entry_client_order_id == btc_entry
        assert ex.executor.control.state == "stopped"
        # Stopped: a new BUY opens nothing.
        blocked = candle()
        await ex.bus.signal("BTCUSDT", "BUY", blocked)
        await wait_until(lambda: ex.bus.alerts("entry_skipped", "BTCUSDT"), 10, "entry skipped after close-all")
        assert entry_client_order_id("BTCUSDT", blocked) not in simulator.state()["client_order_ids"]
    finally:
        await ex.close()


async def test_a_parameter_change_is_answered(ex: InProcess) -> None:
    await update_parameters(ex.redis, {"RSI_PERIOD": 10}, "test", StrategyParameters(), command_id="param-change-1")
    done = await answer(ex, "param-change-1", "done")
    assert done.command == "set_parameters" and "version 1" in done.reason
    assert ex.executor.control.parameters.RSI_PERIOD == 10


async def _state(ex: InProcess, state: str) -> bool:
    await asyncio.sleep(0)
    return ex.executor.control.state == state


async def test_a_close_below_the_exchange_minimum_is_refused_naming_the_filter(ex: InProcess) -> None:
    _, position = await open_position(ex)
    # A crash far below the stop: the stop-loss exit itself would be under minNotional at this price.
    await command(ex, "stop")
    await ex.bus.tick(SYMBOL, "0.01")
    await wait_until(lambda: ex.bus.alerts("exit_dust"), 10, "stop-loss exit below the minimum")
    close_id = await command(ex, "close_position", SYMBOL)
    refused = await answer(ex, close_id, "refused", SYMBOL)
    assert refused.reason.startswith("order below the exchange minimum") and "NOTIONAL" in refused.reason
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN" and position.quantity > 0
