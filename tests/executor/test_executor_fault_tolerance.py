"""Faults must not change what the executor trades: prices and exit signals from before a
position's entry, a transient error on the reads before sizing, rate limits on the order, a
lease lost during a wait, signals too old in market time, intents that were never sent.

The executor service object runs against the real simulator (faults injected through its admin
endpoint), a real redis-server and a SQLite ledger.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from services.executor import store
from shared import streams
from shared.bus import publish_atomically
from shared.codec import decode
from shared.events import now_ms
from shared.store.database import open_engine, session_factory
from shared.trading.ids import entry_client_order_id
from tests.executor.harness import MINUTE, InProcess, candle, start_in_process, wait_until
from tests.executor.test_executor_faults import ex, order_requests  # noqa: F401 - the fixture, shared
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"
ORDER_PATH = "/api/v3/order"
ACCOUNT_PATH = "/api/v3/account"


async def drained(ex: InProcess, stream: str) -> bool:
    groups = await ex.redis.xinfo_groups(stream)
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


async def decisions(ex: InProcess) -> list:
    return [decode(fields).payload for _, fields in await ex.redis.xrange(streams.DECISIONS)]


async def status_of(ex: InProcess, client_id: str, status: str):
    order = await ex.ledger.order(client_id)
    return order if order is not None and order.status == status else None


# -- D2: only prices and exit signals after the entry act on the position ----------------------


async def test_prices_and_sell_signals_from_before_the_entry_fill_do_not_exit(ex: InProcess) -> None:
    open_time = candle()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    filled = position.entry_time_ms
    # A SELL decided on a candle that closed before the fill, and a stop-loss price stamped by
    # the exchange before the fill (delivered late): neither belongs to this position.
    await ex.bus.signal(SYMBOL, "SELL", filled - 2 * MINUTE)
    await ex.bus.tick(SYMBOL, str(position.stop_loss), ts_event_ms=filled - 30_000)
    await wait_until(lambda: drained(ex, streams.ticker_stream(SYMBOL)), 5, "ticks handled")
    await wait_until(lambda: drained(ex, streams.executor_inbox(SYMBOL)), 5, "inbox handled")
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    assert len(await ex.ledger.orders(SYMBOL)) == 1
    [ignored] = await ex.bus.alerts("exit_ignored")
    assert "before the position's entry" in ignored.message
    assert any(d.note == "exit ignored: signal from before the entry" for d in await decisions(ex))
    # The first price after the fill that crosses the level exits, in its own candle.
    after = filled + 90_000
    await ex.bus.tick(SYMBOL, str(position.stop_loss), ts_event_ms=after)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == after // MINUTE * MINUTE


# -- D4: the reads before sizing retry like orders; refusals do not use up send attempts -------


async def test_a_429_on_the_account_read_is_waited_out_and_the_entry_goes_through(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    simulator.throttle_next(1, status=429, retry_after=1, path_prefix=ACCOUNT_PATH)
    open_time = candle()
    started = time.monotonic()
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    assert position.entry_client_order_id == entry_client_order_id(SYMBOL, open_time)
    assert time.monotonic() - started >= 1.0
    assert await ex.bus.alerts("rate_limited") and not await ex.bus.alerts("entry_skipped")


async def test_a_429_on_the_order_does_not_use_up_a_send_attempt(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, ORDER_SEND_ATTEMPTS="1")
    try:
        before = order_requests(simulator)
        simulator.throttle_next(2, status=429, retry_after=1, path_prefix=ORDER_PATH)
        open_time = candle()
        await handle.bus.signal(SYMBOL, "BUY", open_time)
        await wait_until(lambda: handle.ledger.open_position(SYMBOL), 10, "position OPEN")
        assert order_requests(simulator) - before == 3  # two refusals, then the one send
        assert simulator.state()["client_order_ids"].count(entry_client_order_id(SYMBOL, open_time)) == 1
    finally:
        await handle.close()
        simulator.reset_faults()


# -- D5: the lease is checked after any wait, right before the send ----------------------------


async def test_a_lease_lost_while_waiting_for_retry_after_sends_nothing(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    before = order_requests(simulator)
    simulator.throttle_next(1, status=429, retry_after=2, path_prefix=ORDER_PATH)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.bus.alerts("rate_limited"), 10, "order waiting for Retry-After")
    # Another replica holds the symbol now (this one lost it during the wait).
    await ex.redis.set(streams.lease_key("executor", SYMBOL), "another-replica", px=60_000)
    order = await wait_until(lambda: status_of(ex, client_id, "REJECTED"), 10, "the intent abandoned")
    assert "lease" in order.reason
    await asyncio.sleep(0.5)
    assert order_requests(simulator) - before == 1  # only the refused request
    assert client_id not in simulator.state()["client_order_ids"]
    assert (await ex.ledger.active(SYMBOL)) is None  # FAILED: the symbol is not blocked


# -- 6: ages in market time ------------------------------------------------------------------


async def test_a_signal_old_in_market_time_is_skipped_and_logged_in_the_decisions(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    # Handled the moment it was published (wall clock), but the market has moved three candles
    # past its candle's close: at any replay speed, as at 1x, it is too old to act on.
    open_time = candle()
    event = ex.bus.signal_event(SYMBOL, "BUY", open_time)
    await ex.bus.fresh(SYMBOL, open_time + MINUTE + 3 * MINUTE)
    await publish_atomically(ex.redis, [(streams.SIGNALS, event), (streams.executor_inbox(SYMBOL), event)])
    [alert] = await wait_until(lambda: ex.bus.alerts("entry_skipped"), 10, "entry skipped")
    assert "too old" in alert.message and "3.0 candles" in alert.message
    [record] = await wait_until(lambda: decisions(ex), 5, "decision-log entry")
    assert record.candle_open_time_ms == open_time and record.note.startswith("skipped: signal too old")
    assert entry_client_order_id(SYMBOL, open_time) not in simulator.state()["client_order_ids"]


async def test_a_buy_while_an_entry_is_pending_is_recorded_in_the_decisions(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    simulator.fail_next(6, status=502, execute=True, path_prefix=ORDER_PATH)
    await ex.bus.signal(SYMBOL, "BUY", candle())
    await wait_until(lambda: ex.bus.alerts("order_unsettled"), 10, "entry pending")
    second = candle()
    await ex.bus.signal(SYMBOL, "BUY", second)
    records = await wait_until(lambda: decisions(ex), 10, "decision-log entry")
    assert [(r.candle_open_time_ms, r.note) for r in records] == [(second, "skipped: entry pending")]


async def test_an_entry_not_sendable_within_its_allowance_is_abandoned_never_filled_late(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    simulator.throttle_next(1, status=429, retry_after=2, path_prefix=ORDER_PATH)
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.bus.alerts("rate_limited"), 10, "order waiting for Retry-After")
    await ex.redis.hset(streams.MARKET_CLOCK, SYMBOL, str(open_time + 5 * MINUTE))  # the market moved on
    order = await wait_until(lambda: status_of(ex, client_id, "REJECTED"), 10, "entry abandoned")
    assert "allowance" in order.reason
    assert client_id not in simulator.state()["client_order_ids"]
    assert (await ex.bus.snapshot(SYMBOL))["status"] == "FLAT"


# -- 7: nothing stuck ----------------------------------------------------------------------------


async def test_an_intent_never_sent_is_settled_when_its_grace_ends_not_at_the_next_reconciliation(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    # A previous owner committed the intent and died before sending it.
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    engine = open_engine(sqlite_url)
    try:
        async with session_factory(engine).begin() as session:
            await store.create_entry_intent(
                session,
                symbol=SYMBOL,
                client_order_id=client_id,
                quantity=Decimal("0.01"),
                signal_event_id="s",
                reason="signal",
                entry_candle_open_ms=open_time,
                now_ms=now_ms(),
            )
    finally:
        await engine.dispose()
    handle = await start_in_process(
        simulator, redis_url, sqlite_url, SYMBOL, INTENT_GRACE_S="2", RECONCILE_INTERVAL_S="60"
    )
    try:
        started = time.monotonic()
        order = await wait_until(lambda: status_of(handle, client_id, "REJECTED"), 8, "intent settled")
        assert time.monotonic() - started < 6
        assert "no order with this id" in order.reason
        assert (await handle.ledger.active(SYMBOL)) is None
        assert (await handle.bus.snapshot(SYMBOL))["status"] == "FLAT"
    finally:
        await handle.close()


async def test_an_unknown_outcome_is_queried_again_soon_without_ticks_or_reconciliation(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    # The order executes, but its answer and the next five queries fail; then the exchange
    # answers again. No tick arrives and the periodic reconciliation is a minute away.
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, RECONCILE_INTERVAL_S="60")
    try:
        simulator.fail_next(6, status=502, execute=True, path_prefix=ORDER_PATH)
        open_time = candle()
        await handle.bus.signal(SYMBOL, "BUY", open_time)
        await wait_until(lambda: handle.bus.alerts("order_unsettled"), 10, "unsettled alert")
        position = await wait_until(lambda: handle.ledger.open_position(SYMBOL), 8, "position OPEN")
        assert position.entry_client_order_id == entry_client_order_id(SYMBOL, open_time)
        assert simulator.state()["client_order_ids"].count(position.entry_client_order_id) == 1
    finally:
        await handle.close()
        simulator.reset_faults()
