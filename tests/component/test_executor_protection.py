"""``PROTECTION=exchange`` through the shell on the scripted exchange: the OCO after the entry,
its legs' fills, a refused list (bot-side watch and an alert), a lost answer to the placement,
a restart between the legs' intent and the send, and a leg that fills while the bot cancels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.executor import store
from services.executor.config import ExecutorSettings
from services.executor.errors import RateLimited, Rejected, RetryLater, UnknownOutcome
from shared import streams
from shared.codec import loads
from shared.store.database import migrate, open_engine, session_factory
from shared.trading.ids import ProtectionIds, entry_client_order_id, exit_client_order_id, protection_ids
from shared.trading.ledger import fill_from_trade
from tests.component.conftest import MINUTE, SETTINGS, Rig
from tests.component.fake_exchange import LOST, SYMBOL, FakeExchange
from tests.support.fake_clock import FakeClock

D = Decimal
WOULD_TRIGGER = Rejected("orderList/oco: -2010 Order would trigger immediately.", -2010)


@pytest.fixture
async def rig(
    tmp_path: Path, redis_url: str, redis_client: Redis, exchange: FakeExchange, clock: FakeClock
) -> AsyncIterator[Rig]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    engine = open_engine(url)
    settings = ExecutorSettings(**SETTINGS, PROTECTION="exchange", REDIS_URL=redis_url, DATABASE_URL=url)
    yield Rig(redis_client, engine, exchange, clock, settings)
    await engine.dispose()


async def open_guarded(rig: Rig) -> tuple[str, ProtectionIds]:
    signal = await rig.signal("BUY")
    entry = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    rig.clock.advance(1.0)  # prices from now on are after the entry's fill
    return entry, protection_ids(entry)


async def snapshot(rig: Rig) -> dict:
    return loads(await rig.redis.hget(streams.POSITIONS, SYMBOL)) or {}


def oco_calls(rig: Rig) -> list[str]:
    return [cid for endpoint, cid in rig.exchange.calls if endpoint == "oco"]


async def test_the_oco_rests_after_the_entry_and_its_stop_leg_closes_the_position(rig: Rig) -> None:
    await rig.start()
    entry, made = await open_guarded(rig)
    position = await rig.position()
    assert position is not None and position.status == "OPEN"
    assert oco_calls(rig) == [made.list_id]
    stop, take = await rig.order(made.stop_loss), await rig.order(made.take_profit)
    assert (stop.status, take.status) == ("SUBMITTED", "SUBMITTED")
    assert (stop.order_type, take.order_type, stop.purpose) == ("STOP_LOSS", "LIMIT_MAKER", "protect")
    assert stop.requested_quantity == position.quantity // D("0.00001") * D("0.00001")
    assert D(rig.exchange.orders[made.stop_loss]["price"]) == position.stop_loss
    assert (await snapshot(rig))["protection"] == "exchange"

    # A price through the stop is the exchange's to act on: the bot sends nothing.
    await rig.tick("90000", ts_event_ms=rig.market_ms() + MINUTE)
    assert rig.exchange.sent() == [entry]

    rig.exchange.fill_leg(made.stop_loss)
    await rig.reports(made.stop_loss)
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and closed.exit_client_order_id == made.stop_loss
    assert closed.exit_price == position.stop_loss
    [event] = [e.payload for e in await rig.events("position_closed")]
    assert event.exit_reason == "stop_loss" and event.client_order_id == made.stop_loss
    # The other leg's expiry is recorded by the next settling round.
    rig.clock.advance(31.0)
    await rig.round()
    assert (await rig.order(made.take_profit)).status == "EXPIRED"
    assert rig.exchange.sent() == [entry] and (await snapshot(rig))["status"] == "FLAT"


async def test_a_refused_oco_falls_back_to_the_bot_watch_with_an_alert(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("oco", WOULD_TRIGGER)
    entry, made = await open_guarded(rig)
    assert (await rig.order(made.stop_loss)).status == "REJECTED"
    assert (await rig.order(made.take_profit)).status == "REJECTED"
    [alert] = await rig.alerts("protection_fallback")
    assert alert.level == "error" and "watches the levels on ticks" in alert.message
    assert "would trigger immediately" in alert.message.lower()
    assert (await snapshot(rig))["protection"] == "bot"

    await rig.tick("90000", ts_event_ms=rig.market_ms() + MINUTE)
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and rig.exchange.sent() == [entry, exit_client_order_id(entry)]
    assert oco_calls(rig) == [made.list_id]  # refused once: not sent again while the position lived


async def test_a_symbol_without_oco_order_types_is_watched_by_the_bot_with_an_alert(rig: Rig) -> None:
    rig.exchange.info = type(rig.exchange.info)("BTCUSDT", "BTC", "USDT", rig.exchange.info.filters, ("MARKET",))
    await rig.start()
    await open_guarded(rig)
    assert oco_calls(rig) == []
    [alert] = await rig.alerts("protection_fallback")
    assert "LIMIT_MAKER" in alert.message
    assert (await snapshot(rig))["protection"] == "bot"


async def test_a_lost_answer_to_the_placement_is_settled_by_querying_the_legs(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("oco", LOST)
    entry, made = await open_guarded(rig)
    assert oco_calls(rig) == [made.list_id]  # never sent twice
    assert (await rig.order(made.stop_loss)).status == "SUBMITTED"
    assert (await rig.order(made.take_profit)).status == "SUBMITTED"
    assert (await snapshot(rig))["protection"] == "exchange"
    await rig.tick("90000", ts_event_ms=rig.market_ms() + MINUTE)
    assert rig.exchange.sent() == [entry]


async def test_a_lost_answer_and_a_restart_finds_the_list_instead_of_placing_another(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("oco", LOST)
    rig.exchange.then("query", *[RetryLater("query order: HTTP 503")] * 10)
    _, made = await open_guarded(rig)
    assert (await rig.order(made.stop_loss)).status == "UNKNOWN"
    rig.exchange._script["query"].clear()

    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.clock.advance(30.0)  # well past the grace: only the exchange's answer decides
    rig.executor = await rig.start(rig.replica("executor-b"))
    assert (await rig.order(made.stop_loss)).status == "SUBMITTED"
    assert oco_calls(rig) == [made.list_id]
    assert rig.executor.books[SYMBOL].guarded


async def test_legs_that_never_reached_the_exchange_are_placed_again_under_the_same_ids(rig: Rig) -> None:
    await rig.start()
    # The request never arrives and the queries find nothing: the legs stay UNKNOWN, the bot watches.
    rig.exchange.then("oco", UnknownOutcome("orderList/oco: connection error"))
    _, made = await open_guarded(rig)
    assert (await rig.order(made.stop_loss)).status == "UNKNOWN"
    assert not rig.exchange.lists

    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.clock.advance(30.0)
    rig.executor = await rig.start(rig.replica("executor-b"))
    assert oco_calls(rig) == [made.list_id, made.list_id]
    assert [ol["open"] for ol in rig.exchange.lists.values()] == [True]
    assert (await rig.order(made.stop_loss)).status == "SUBMITTED"


async def test_a_leg_that_fills_during_the_cancel_closes_the_position_and_nothing_more_is_sold(rig: Rig) -> None:
    await rig.start()
    entry, made = await open_guarded(rig)
    rig.exchange.then("cancel", lambda: rig.exchange.fill_leg(made.stop_loss))
    await rig.close()
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and closed.exit_client_order_id == made.stop_loss
    assert rig.exchange.sent() == [entry]  # no exit order of the bot's
    assert (await rig.order(made.take_profit)).status == "EXPIRED"
    assert any(outcome == "done" and "closed" in reason for outcome, reason in await rig.answers())


async def test_a_sell_signal_cancels_the_oco_then_sells(rig: Rig) -> None:
    await rig.start()
    entry, made = await open_guarded(rig)
    rig.clock.advance(120.0)  # the SELL's candle closes after the entry filled
    await rig.signal("SELL")
    [closed] = await rig.closed()
    assert closed.exit_reason == "signal"
    assert [c for c in rig.exchange.calls if c[0] in ("cancel", "order")][-2:] == [
        ("cancel", made.list_id),
        ("order", exit_client_order_id(entry)),
    ]
    assert (await rig.order(made.stop_loss)).status == "CANCELED"


async def test_a_list_refused_before_execution_is_watched_by_the_bot_then_placed_at_the_next_check(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("oco", RateLimited("orderList/oco: -1003 Too many requests.", -1003, 0.0))
    _, made = await open_guarded(rig)
    [alert] = await rig.alerts("protection_fallback")
    assert alert.level == "warning" and "placed again" in alert.message
    assert (await snapshot(rig))["protection"] == "bot"

    rig.clock.advance(31.0)
    await rig.round()
    assert oco_calls(rig) == [made.list_id, made.list_id]
    assert (await rig.order(made.stop_loss)).status == "SUBMITTED"
    assert (await snapshot(rig))["protection"] == "exchange"


async def test_a_take_profit_leg_filled_in_part_leaves_the_rest_to_the_bot_watch(rig: Rig) -> None:
    await rig.start()
    entry, made = await open_guarded(rig)
    position = await rig.position()
    assert position is not None and position.take_profit is not None
    # 40 % sells at the take-profit; the stop leg expires with it (one cancels the other).
    rig.exchange.fill_leg(made.take_profit, D("0.4"))
    await rig.reports(made.take_profit)
    assert (await rig.order(made.take_profit)).status == "PARTIALLY_FILLED"
    rig.clock.advance(31.0)
    await rig.round()  # the settling round records the stop leg's expiry
    assert (await rig.order(made.stop_loss)).status == "EXPIRED"
    assert (await snapshot(rig))["protection"] == "bot"

    # The price falls through the stop: the bot cancels what rests and sells the rest at market.
    await rig.tick("90000", ts_event_ms=rig.market_ms() + MINUTE)
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss"
    assert (await rig.order(made.take_profit)).status == "CANCELED"
    leg, rest = await rig.order(made.take_profit), await rig.order(exit_client_order_id(entry))
    assert rest.requested_quantity == stop_quantity(position.quantity) - leg.executed_quantity
    sold = leg.executed_quantity + rest.executed_quantity
    assert closed.exit_price == (leg.cumulative_quote + rest.cumulative_quote) / sold
    assert rig.exchange.sent() == [entry, exit_client_order_id(entry)]


def stop_quantity(quantity: Decimal) -> Decimal:
    return quantity // D("0.00001") * D("0.00001")


async def test_a_position_left_closing_by_a_leg_is_closed_by_the_next_owner(rig: Rig) -> None:
    await rig.start()
    _, made = await open_guarded(rig)
    rig.exchange.fill_leg(made.stop_loss)
    # A process recorded the leg's fill and the position CLOSING by it, then died before closing it.
    async with session_factory(rig.engine).begin() as session:
        position = await store.active_position(session, SYMBOL)
        leg = await store.get_order(session, made.stop_loss)
        assert position is not None and leg is not None
        await store.record_fill(session, leg, fill_from_trade(rig.exchange.trades[-1]))
        await store.update_order(
            session, leg, now_ms=rig.clock.now_ms(), status="FILLED", executed_quantity=leg.requested_quantity
        )
        await store.mark_leg_exit(
            session, position, leg=leg, exit_reason="stop_loss", stamp_ms=rig.clock.now_ms(), interval_ms=MINUTE
        )

    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.executor = await rig.start(rig.replica("executor-b"))
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and closed.exit_client_order_id == made.stop_loss
    assert [f.trade_id for f in await fills_of(rig, made.stop_loss)] == [rig.exchange.trades[-1]["id"]]
    assert (await rig.order(made.take_profit)).status == "EXPIRED"


async def fills_of(rig: Rig, client_id: str) -> list:
    async with session_factory(rig.engine)() as session:
        return await store.fills_of(session, [client_id])
