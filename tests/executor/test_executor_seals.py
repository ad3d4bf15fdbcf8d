"""Entries that move money without a valid MAC: the executor, against the real simulator,
drops them (dead letter), alerts, and sends no order."""

from __future__ import annotations

import pytest

from services.executor.config import ExecutorSettings
from services.executor.service import require_key
from shared import signing, streams
from shared.codec import encode
from shared.events import BotCommand, make_event
from shared.signing import SigningKeyError
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.executor.harness import InProcess, wait_until
from tests.executor.test_executor_orders import SYMBOL, candle, ex  # noqa: F401 - the same executor fixture
from tests.support.simulator import SimulatorProcess

OTHER_KEY = signing.parse_key(signing.new_key())


def unsealed(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k != signing.MAC_FIELD}


def forgeries(fields: dict[str, str]) -> dict[str, dict[str, str]]:
    """A copied BUY without a MAC, with one made by another key, and a genuine one altered."""
    tampered = {**fields, "price": "1"}
    return {
        "missing": unsealed(fields),
        "other key": signing.seal_fields(unsealed(fields), OTHER_KEY),
        "altered": tampered,
    }


async def test_forged_buy_signals_place_no_order_and_raise_an_alert(ex: InProcess, simulator: SimulatorProcess) -> None:
    open_time = candle()
    await ex.bus.fresh(SYMBOL)
    genuine = encode(ex.bus.signal_event(SYMBOL, "BUY", open_time))
    assert signing.check_fields(genuine, signing.installed_key()) is signing.Seal.VALID
    inbox = streams.executor_inbox(SYMBOL)
    for fields in forgeries(genuine).values():
        await ex.redis.xadd(inbox, fields)
    alerts = await wait_until(lambda: _at_least(ex, "forged_entry", 3), 10, "three forged_entry alerts")
    assert {a.symbol for a in alerts} == {SYMBOL} and all("no order sent" in a.message for a in alerts)
    assert sorted(a.message.split("MAC ")[1].split(";")[0] for a in alerts) == ["invalid", "invalid", "missing"]

    client_id = entry_client_order_id(SYMBOL, open_time)
    assert client_id not in simulator.state()["client_order_ids"]
    assert await ex.ledger.orders(SYMBOL) == []
    dead = await ex.redis.xrange(streams.deadletter_stream(inbox))
    assert [f["dl_error"] for _, f in dead] == ["mac missing", "mac invalid", "mac invalid"]

    # The very same signal, sealed by the strategy's key, is bought: only the MAC was missing.
    await ex.redis.xadd(inbox, genuine)
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    assert simulator.state()["client_order_ids"].count(client_id) == 1


async def test_a_signal_slipped_into_the_ticker_stream_is_refused_too(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    # market_data may write market:*, so its user could append there: a signal needs the MAC anywhere.
    # The ticker stream is read while a position is open (a flat symbol's ticks are not read at all).
    await ex.bus.signal(SYMBOL, "BUY", candle())
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    orders = len(await ex.ledger.orders(SYMBOL))
    open_time = candle()
    await ex.bus.fresh(SYMBOL)
    fields = unsealed(encode(ex.bus.signal_event(SYMBOL, "BUY", open_time)))
    await ex.redis.xadd(streams.ticker_stream(SYMBOL), fields)
    await wait_until(lambda: _at_least(ex, "forged_entry", 1), 10, "forged_entry alert")
    assert entry_client_order_id(SYMBOL, open_time) not in simulator.state()["client_order_ids"]
    assert len(await ex.ledger.orders(SYMBOL)) == orders


async def test_forged_close_and_stop_commands_change_nothing(ex: InProcess, simulator: SimulatorProcess) -> None:
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    close = unsealed(encode(make_event(BotCommand(command="close_position", symbol=SYMBOL, requested_by="x"), "api")))
    stop = signing.seal_fields(
        unsealed(encode(make_event(BotCommand(command="stop", requested_by="x"), "api"))), OTHER_KEY
    )
    await ex.redis.xadd(streams.symbol_commands(SYMBOL), close)
    await ex.redis.xadd(streams.CONTROL_COMMANDS, stop)
    await wait_until(lambda: _at_least(ex, "forged_entry", 2), 10, "two forged_entry alerts")
    assert ex.executor.control.state == "running"
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    assert exit_client_order_id(entry_client_order_id(SYMBOL, open_time)) not in simulator.state()["client_order_ids"]

    # The api's sealed close is obeyed.
    await ex.bus.close_position(SYMBOL)
    await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position closed")


async def test_the_executor_does_not_start_without_the_key() -> None:
    with pytest.raises(SigningKeyError, match="BUS_SIGNING_KEY"):
        require_key(ExecutorSettings(BUS_SIGNING_KEY=""))


async def _at_least(ex: InProcess, code: str, count: int) -> list | None:
    alerts = await ex.bus.alerts(code)
    return alerts if len(alerts) >= count else None
