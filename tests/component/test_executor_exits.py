"""Exits through the shell: a partial exit whose answer was lost, settled by the next owner's
reconciliation and finished under the next exit id; refused exits sent again; a close asked for
while the entry was still being filled."""

from __future__ import annotations

from decimal import Decimal

from services.executor.errors import RateLimited, Rejected, RetryLater
from shared import streams
from shared.events import Outcome
from shared.store.models import Position
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.component.conftest import MINUTE, Rig
from tests.component.fake_exchange import LOST, SYMBOL, Execute

D = Decimal
INSUFFICIENT = Rejected("order: -2010 Account has insufficient balance for requested action.", -2010)


async def open_position(rig: Rig) -> tuple[Position, str]:
    signal = await rig.signal("BUY")
    position = await rig.position()
    assert position is not None and position.status == "OPEN" and position.stop_loss is not None
    rig.clock.advance(1.0)  # prices from now on are after the entry's fill
    return position, entry_client_order_id(SYMBOL, signal.candle_open_time_ms)


async def test_a_partial_exit_whose_answer_was_lost_is_reconciled_and_the_rest_sold_next(rig: Rig) -> None:
    await rig.start()
    position, entry_id = await open_position(rig)
    first, second = exit_client_order_id(entry_id), exit_client_order_id(entry_id, 2)
    # The stop-loss exit sweeps a thin book: 40 % in two trades, the rest expires; its answer is
    # lost and every query fails, then this replica dies.
    rig.exchange.then("order", Execute(part=D("0.4"), trades=2, answer=False))
    rig.exchange.then("query", *[RetryLater("query order: HTTP 503")] * 3)
    crossed = rig.market_ms() + MINUTE
    await rig.tick("97000", ts_event_ms=crossed)
    assert (await rig.order(first)).status == "UNKNOWN"

    # The next owner reconciles: the query finds the order EXPIRED, its fills come from
    # myTrades, the position is OPEN again with the stop-loss still decided.
    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.executor = await rig.start(rig.replica("executor-b"))
    partly = await rig.position()
    assert partly is not None and partly.status == "OPEN" and partly.exit_reason == "stop_loss"
    exit_order = await rig.order(first)
    assert exit_order.status == "EXPIRED" and exit_order.executed_quantity == D("0.4") * position.quantity // D(
        "0.00001"
    ) * D("0.00001")
    summary = (await rig.alerts("reconciled"))[-1]  # the new owner's
    assert summary.message.startswith("1 unsettled order(s) before, 0 after")
    assert await rig.alerts("balance_mismatch") == []  # the account holds what the exits did not sell
    assert [a.code for a in await rig.alerts("exit_partial")] == ["exit_partial"]

    # The decided exit is sent again on its own (no price needed), under the next id.
    rig.clock.advance(1.0)
    await rig.round()
    [closed] = await rig.closed()
    assert rig.exchange.sent() == [entry_id, first, second]
    assert (await rig.order(second)).status == "FILLED"
    assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == crossed // MINUTE * MINUTE
    sold = exit_order.executed_quantity + (await rig.order(second)).executed_quantity
    assert closed.quantity - sold == closed.dust_out < D("0.00001")  # only dust below one step is left


async def test_a_refused_exit_is_sent_again_under_its_id_by_a_price_after_exit_retry_s(rig: Rig) -> None:
    await rig.start()
    _, entry_id = await open_position(rig)
    exit_id = exit_client_order_id(entry_id)
    rig.exchange.then("order", INSUFFICIENT)
    await rig.tick("97000")
    held = await rig.position()
    assert held is not None and held.status == "OPEN" and held.exit_reason is None
    assert [a.code for a in await rig.alerts() if a.level == "error"] == ["insufficient_balance", "exit_refused"]
    # No timer: the answer will not change by itself; a price within EXIT_RETRY_S sends nothing.
    rig.clock.advance(5.0)
    await rig.round()
    await rig.tick("97000")
    assert rig.exchange.sent(exit_id) == [exit_id]
    # After EXIT_RETRY_S the next price beyond the level sends the same id again.
    rig.clock.advance(5.0)
    await rig.tick("97100")
    assert rig.exchange.sent(exit_id) == [exit_id, exit_id]
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and (await rig.order(exit_id)).status == "FILLED"


async def test_an_exit_banned_before_it_could_execute_stays_decided_and_is_retried_after_the_ban(rig: Rig) -> None:
    await rig.start()
    _, entry_id = await open_position(rig)
    exit_id = exit_client_order_id(entry_id)
    rig.exchange.then("order", RateLimited("order: HTTP 418 banned", None, 60.0))
    crossed = rig.market_ms() + 1_000
    await rig.tick("97000", ts_event_ms=crossed)
    [pending] = await rig.alerts("exit_pending")
    assert "sent again in 60.0s with the same id" in pending.message
    rig.clock.advance(30.0)
    await rig.round()
    assert rig.exchange.sent(exit_id) == [exit_id]
    rig.clock.advance(31.0)
    await rig.round()
    assert rig.exchange.sent(exit_id) == [exit_id, exit_id]
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == crossed // MINUTE * MINUTE


async def test_a_close_asked_for_while_the_entry_is_being_filled_sells_it_once_open(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("order", LOST)
    rig.exchange.then("query", *[RetryLater("query order: HTTP 503")] * 3)
    signal = await rig.signal("BUY")
    entry_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    await rig.close()
    assert (await rig.answers())[-1][0] == Outcome.ACCEPTED
    await rig.reports(entry_id)  # the fills arrive: the position opens and is sold at once
    [closed] = await rig.closed()
    assert closed.exit_reason == "manual"
    assert rig.exchange.sent() == [entry_id, exit_client_order_id(entry_id)]
    outcomes = [outcome for outcome, _ in await rig.answers()]
    assert outcomes == [Outcome.ACCEPTED, Outcome.DONE]
