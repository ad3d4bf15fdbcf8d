"""Entries through the shell: a filled entry opens with levels, an unknown outcome is settled
by query, a fill that arrives after the next candle's first extreme is not exited on it, and an
entry the exchange's own clock says is past its allowance is abandoned, never filled late."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from services.executor import store
from services.executor.errors import Rejected, RetryLater
from shared import streams
from shared.codec import decode
from shared.trading.ids import entry_client_order_id
from tests.component.conftest import MINUTE, Rig
from tests.component.fake_exchange import LOST, SYMBOL

D = Decimal


async def test_a_filled_entry_opens_the_position_with_levels_from_its_fill(rig: Rig) -> None:
    await rig.start()
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    position = await rig.position()
    assert position is not None and position.status == "OPEN"
    assert (
        position.entry_price == D("100000") and position.stop_loss == D("98000") and position.take_profit == D("105000")
    )
    order = await rig.order(client_id)
    assert order.status == "FILLED" and position.quantity == order.executed_quantity * D("0.999")
    assert rig.exchange.sent() == [client_id]
    assert [e.type for e in await rig.events() if e.type.startswith("position_")] == [
        "position_snapshot",
        "position_snapshot",
        "position_opened",
        "position_snapshot",
    ]


async def test_an_unknown_outcome_is_resolved_by_query_without_a_second_order(rig: Rig) -> None:
    await rig.start()
    # The order executes but its answer is lost; the first query meets a 5xx, the second finds it.
    rig.exchange.then("order", LOST)
    rig.exchange.then("query", RetryLater("query order: HTTP 503"))
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert rig.exchange.sent() == [client_id]
    order = await rig.order(client_id)
    assert order.status == "FILLED"
    position = await rig.position()
    assert position is not None and position.status == "OPEN"
    # The query's answer carries no fills: they came from myTrades, each trade once.
    assert [c for c in rig.exchange.calls if c[0] in ("query", "trades")] == [
        ("query", client_id),
        ("query", client_id),
        ("trades", str(order.exchange_order_id)),
    ]
    assert [a.code for a in await rig.alerts() if a.code.startswith("order_")] == ["order_unknown"]
    assert rig.clock.slept == [1.0, 1.0]  # ORDER_QUERY_DELAY_S before each query, on the fake clock


async def test_a_fill_known_only_after_the_next_candles_first_extreme_is_not_exited_on_it(rig: Rig) -> None:
    await rig.start()
    # The entry executes at 20 s into the minute, but its answer is lost and every query fails:
    # the outcome stays unknown while the next candle's first tick dives below the stop-loss.
    candle_close = rig.market_ms() // MINUTE * MINUTE
    rig.exchange.fill_time_ms = candle_close + 20_000
    rig.exchange.then("order", LOST)
    rig.exchange.then("query", *[RetryLater("query order: HTTP 503")] * 4)
    signal = await rig.signal("BUY", candle_open_ms=candle_close - MINUTE)
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert [a.code for a in await rig.alerts("order_unsettled")] == ["order_unsettled"]
    position = await rig.position()
    assert position is not None and position.status == "OPENING"
    rig.clock.advance(2.0)
    await rig.tick("97000", ts_event_ms=candle_close + 5_000)  # settles (one query, failing), never exits
    position = await rig.position()
    assert position is not None and position.status == "OPENING"

    # The fills arrive (execution reports) stamped after that extreme: levels from the fill.
    await rig.reports(client_id)
    position = await rig.position()
    assert position is not None and position.status == "OPEN" and position.entry_time_ms == candle_close + 20_000
    # The extreme, read again late (a backlog), is from before the entry: no exit.
    await rig.tick("97000", ts_event_ms=candle_close + 5_000)
    assert len(rig.exchange.sent()) == 1
    # A later price below the stop-loss exits, recorded in the candle where it was crossed.
    await rig.tick("97900", ts_event_ms=candle_close + MINUTE + 3_000)
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == candle_close + MINUTE
    assert closed.exit_market_time_ms == candle_close + MINUTE + 3_000


async def test_an_account_read_that_times_out_is_retried_within_the_signals_allowance(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("account", RetryLater("account: timed out (TimeoutError)"))
    await rig.signal("BUY")
    position = await rig.position()
    assert position is not None and position.status == "OPEN"
    assert [a.code for a in await rig.alerts("exchange_unavailable")] == ["exchange_unavailable"]
    assert rig.clock.slept == [1.0]


async def test_an_entry_refused_by_the_exchange_never_opens_and_frees_the_symbol(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("order", Rejected("order: -2010 Account has insufficient balance for requested action.", -2010))
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert (await rig.order(client_id)).status == "REJECTED"
    assert await rig.position() is None
    assert [a.code for a in await rig.alerts("insufficient_balance")] == ["insufficient_balance"]
    # The same signal handled again (redelivered) names the same order and sends nothing.
    await rig.signal("BUY", candle_open_ms=signal.candle_open_time_ms)
    assert rig.exchange.sent() == [client_id]


async def decision_notes(rig: Rig) -> list[str]:
    return [decode(fields).payload.note for _, fields in await rig.redis.xrange(streams.DECISIONS)]


async def test_an_entry_whose_allowance_passed_at_the_exchange_is_abandoned_not_filled(rig: Rig) -> None:
    await rig.start()
    # The feed lags: by the market clock the signal's candle just closed, but the exchange is
    # three candles further on (SIGNAL_MAX_AGE_CANDLES is 1).
    rig.exchange.market_ms = rig.market_ms() + 3 * MINUTE
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert rig.exchange.sent() == [] and ("klines", SYMBOL) in rig.exchange.calls
    order = await rig.order(client_id)
    assert order.status == "REJECTED" and "signal too old at the exchange" in order.reason
    assert await rig.position() is None
    [note] = await decision_notes(rig)
    assert note.startswith("skipped: signal too old at the exchange: its candle closed 4 candles before")
    assert note.endswith("(entry abandoned before sending)")


async def test_the_candle_after_the_signals_is_within_the_allowance_at_the_exchange(rig: Rig) -> None:
    await rig.start()
    rig.exchange.market_ms = rig.market_ms() // MINUTE * MINUTE + MINUTE - 1  # its last millisecond
    signal = await rig.signal("BUY")
    assert rig.exchange.sent() == [entry_client_order_id(SYMBOL, signal.candle_open_time_ms)]


async def test_an_exchange_time_that_cannot_be_read_abandons_the_entry(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("klines", *[RetryLater("klines: HTTP 503")] * 5)
    signal = await rig.signal("BUY")
    assert rig.exchange.sent() == []
    assert rig.clock.slept == [1.0] * 4  # retried like the reads before sizing, ORDER_QUERY_DELAY_S apart
    order = await rig.order(entry_client_order_id(SYMBOL, signal.candle_open_time_ms))
    assert order.status == "REJECTED" and "the exchange's time is unknown" in order.reason
    assert [n for n in await decision_notes(rig) if "unknown" in n]


def slow_intents(rig: Rig, monkeypatch: pytest.MonkeyPatch, seconds: float, seen: list[bool]) -> None:
    """Each entry intent's write takes ``seconds`` of the fake clock; ``seen`` records whether the
    exchange's current candle was being read by the time the write began."""
    write = store.create_entry_intent

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)  # a real write yields to the loop at its first statement
        seen.append(("klines", SYMBOL) in rig.exchange.calls)
        rig.clock.advance(seconds)
        return await write(*args, **kwargs)

    monkeypatch.setattr(store, "create_entry_intent", slow)


async def test_the_exchange_time_is_read_while_the_intent_is_written(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.start()
    seen: list[bool] = []
    slow_intents(rig, monkeypatch, 0.0, seen)
    signal = await rig.signal("BUY")
    assert seen == [True]
    assert rig.exchange.sent() == [entry_client_order_id(SYMBOL, signal.candle_open_time_ms)]
    assert rig.exchange.calls.count(("klines", SYMBOL)) == 1  # that read served the send


async def test_an_exchange_time_read_over_a_second_before_the_send_is_read_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rig.start()
    # Read while the intent is written, the exchange's candle is the one after the signal's; the
    # write takes 2 s, and by the read made before the send the exchange is three candles on.
    now = rig.market_ms() // MINUTE * MINUTE
    rig.exchange.then("klines", now, now + 3 * MINUTE)
    slow_intents(rig, monkeypatch, 2.0, [])
    signal = await rig.signal("BUY")
    assert rig.exchange.sent() == []
    assert rig.exchange.calls.count(("klines", SYMBOL)) == 2
    order = await rig.order(entry_client_order_id(SYMBOL, signal.candle_open_time_ms))
    assert order.status == "REJECTED" and "signal too old at the exchange" in order.reason
