"""A reconciliation waiting for request weight holds up nothing else: the periodic pass runs in
its own task and waits for room before it takes a symbol, so a price through the stop-loss sells
at once while the pass is still queued behind a used-up minute window."""

from __future__ import annotations

import asyncio

from shared.request_weight import WINDOW_MS, WeightBudget
from shared.trading.ids import exit_client_order_id
from tests.component.conftest import MINUTE, Rig
from tests.component.test_executor_exits import open_position


class Window:
    """Wall time (ms) inside one minute window that ends only when the test says so."""

    def __init__(self) -> None:
        self.now = 7 * WINDOW_MS
        self.over = asyncio.Event()

    def __call__(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await self.over.wait()
        self.now += int(seconds * 1000)


async def test_a_stop_loss_fires_while_the_periodic_reconciliation_waits_for_weight(rig: Rig) -> None:
    await rig.start()
    position, entry_id = await open_position(rig)
    window = Window()
    budget = WeightBudget(40, clock=window, sleep=window.sleep)
    await budget.spend(40)  # this minute's share is spent: the next read waits for the next window
    rig.exchange.budget = budget  # type: ignore[attr-defined]  # the real Exchange carries its budget

    rig.clock.advance(31.0)
    reconciling = asyncio.create_task(rig.executor.reconcile_due())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not reconciling.done()  # queued behind the used-up window

    assert position.stop_loss is not None
    await rig.tick(str(position.stop_loss - 1000), ts_event_ms=rig.market_ms() + MINUTE)
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss"
    assert rig.exchange.sent() == [entry_id, exit_client_order_id(entry_id)]
    assert not reconciling.done()  # the sale did not wait for it

    window.over.set()
    await asyncio.wait_for(reconciling, 10)
    assert await rig.position() is None  # the pass then found the symbol flat, nothing sent
    assert rig.exchange.sent() == [entry_id, exit_client_order_id(entry_id)]
