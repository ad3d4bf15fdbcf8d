"""A symbol the ledger holds nothing of is reconciled on the short path (no ledger query per
step, no ``myTrades``), and still has a bot-id open order the ledger does not know reported; a
symbol with history after a restart gets the whole reconciliation."""

from __future__ import annotations

from sqlalchemy import event

from shared.trading.ids import entry_client_order_id
from tests.component.conftest import SYMBOL, Rig
from tests.component.test_executor_exits import open_position


async def test_a_new_symbol_is_reconciled_without_the_ledger_and_an_unknown_bot_order_is_reported(rig: Rig) -> None:
    stray = entry_client_order_id(SYMBOL, 1_700_000_000_000, "BUY")
    rig.exchange.then("open", [{"symbol": SYMBOL, "clientOrderId": stray}])
    executor = rig.executor
    await executor.prepare()
    await executor.leases.rebalance()
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(rig.engine.sync_engine, "before_cursor_execute", listener)
    try:
        await executor.reconcile_arrivals()
    finally:
        event.remove(rig.engine.sync_engine, "before_cursor_execute", listener)
    assert len(statements) == 1, statements  # which symbols the ledger holds anything of: not this one
    [unknown] = await rig.alerts("unknown_open_order")
    assert stray in unknown.message
    [reconciled] = await rig.alerts("reconciled")
    assert "1 unknown open order(s); position FLAT" in reconciled.message
    assert [endpoint for endpoint, _ in rig.exchange.calls] == ["info", "open"]  # no myTrades, no account read
    assert rig.executor.books[SYMBOL].position is None
    await open_position(rig)  # and it trades as before


async def test_a_symbol_with_history_is_reconciled_in_full_after_a_restart(rig: Rig) -> None:
    await rig.start()
    position, _ = await open_position(rig)
    rig.exchange.calls.clear()
    fresh = rig.replica("executor-b")
    await rig.redis.delete(f"lease:executor:{SYMBOL}")  # the first process died; its lease is gone
    await rig.start(fresh)
    endpoints = [endpoint for endpoint, _ in rig.exchange.calls]
    assert "trades" in endpoints and "open" in endpoints  # myTrades since the last fill, open orders
    book = fresh.books[SYMBOL]
    assert book.position is not None and book.position.id == position.id
