"""A lease lost while an entry's order is being settled (after its first send, so the signal is
handled): the replica sends nothing more, an order none of whose requests can have arrived is
REJECTED at once, and one that may have arrived is settled by the next owner, by query."""

from __future__ import annotations

from services.executor.errors import RateLimited
from shared import streams
from shared.trading.ids import entry_client_order_id
from tests.component.conftest import MINUTE, Rig
from tests.component.fake_exchange import NOT_SENT, SYMBOL

LEASE = streams.lease_key("executor", SYMBOL)


def steal_lease_at_first_sleep(rig: Rig) -> list[float]:
    """Another replica takes the lease while this one waits (a Retry-After, a query delay)."""
    stolen: list[float] = []

    async def hook(seconds: float) -> None:
        if not stolen:
            stolen.append(seconds)
            await rig.redis.set(LEASE, "executor-b", px=5000)

    rig.clock.on_sleep(hook)
    return stolen


async def test_a_lease_lost_during_retry_after_rejects_the_unsent_order(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("order", RateLimited("order: 429 Too many requests", None, 3.0))
    stolen = steal_lease_at_first_sleep(rig)
    open_ms = (rig.market_ms() // MINUTE - 1) * MINUTE
    await rig.signal("BUY", candle_open_ms=open_ms)  # the loss is logged: the next owner settles
    assert stolen == [3.0]  # it waited for the Retry-After, then found the lease gone
    client_id = entry_client_order_id(SYMBOL, open_ms)
    assert rig.exchange.sent() == [client_id]  # the refused request only; nothing after the loss
    order = await rig.order(client_id)
    assert order.status == "REJECTED" and "no longer holds the symbol's lease" in order.reason
    assert await rig.position() is None  # the position never existed (FAILED): the symbol is free


async def test_an_order_that_may_have_arrived_is_settled_by_the_next_owner(rig: Rig) -> None:
    await rig.start()
    # The request times out without arriving; the query says "does not exist"; before it is sent
    # again (same id), the lease is gone.
    rig.exchange.then("order", NOT_SENT)
    steal_lease_at_first_sleep(rig)
    open_ms = (rig.market_ms() // MINUTE - 1) * MINUTE
    client_id = entry_client_order_id(SYMBOL, open_ms)
    await rig.signal("BUY", candle_open_ms=open_ms)
    assert rig.exchange.sent() == [client_id]
    assert (await rig.order(client_id)).status == "UNKNOWN"  # it may exist: only a query can tell
    assert [a.code for a in await rig.alerts() if a.code.startswith("order_")] == [
        "order_unknown",
        "order_resent",
        "order_unsettled",
    ]

    # The next owner reconciles: the id is still unknown to the exchange but within its grace...
    await rig.redis.delete(LEASE)
    rig.executor = await rig.start(rig.replica("executor-b"))
    assert (await rig.order(client_id)).status == "UNKNOWN"
    # ... and once the grace after the last send is over, "not found" is final.
    rig.clock.advance(10.0)
    await rig.round()
    assert (await rig.order(client_id)).status == "REJECTED"
    assert await rig.position() is None
    assert rig.exchange.sent() == [client_id]
