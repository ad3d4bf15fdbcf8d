"""LIMIT_MAKER entries through the shell, on the scripted exchange: one the book moved into
(-2010 would match) is priced again from a fresh bid under the same id, one refused at every
send fails with an alert, and a close command cancels a resting entry at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.executor.config import ExecutorSettings
from services.executor.errors import Rejected
from shared import streams
from shared.store.database import migrate, open_engine
from shared.trading.ids import entry_client_order_id, fallback_client_order_id
from shared.trading.limit_entry import deadline_ms
from tests.component.conftest import MINUTE, SETTINGS, Rig
from tests.component.fake_exchange import SYMBOL, FakeExchange
from tests.support.fake_clock import FakeClock

D = Decimal
WOULD_TAKE = Rejected("order: -2010 Order would immediately match and take.", -2010)


def limit_settings(redis_url: str, database_url: str, **extra: str) -> ExecutorSettings:
    return ExecutorSettings(
        **SETTINGS,
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        ENTRY_ORDER="limit_maker",
        ENTRY_LIMIT_OFFSET_PERCENTAGE="0.0001",
        ENTRY_LIMIT_TIMEOUT_CANDLES="1",
        **extra,
    )


@pytest.fixture
async def rig(
    tmp_path: Path, redis_url: str, redis_client: Redis, exchange: FakeExchange, clock: FakeClock
) -> AsyncIterator[Rig]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    engine = open_engine(url)
    yield Rig(redis_client, engine, exchange, clock, limit_settings(redis_url, url))
    await engine.dispose()


async def test_a_limit_maker_the_book_moved_into_is_priced_again_under_the_same_id(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("order", WOULD_TAKE)
    rig.exchange.then("bid", "100000", "99950.55")
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert rig.exchange.sent() == [client_id, client_id]
    # 0.01 % below each bid, rounded down to the 0.01 tick.
    assert rig.exchange.limit_prices == [D("99990.00"), D("99940.55")]
    order = await rig.order(client_id)
    assert order.status == "SUBMITTED" and order.order_type == "LIMIT_MAKER"
    assert [a.code for a in await rig.alerts("entry_repriced")] == ["entry_repriced"]
    position = await rig.position()
    assert position is not None and position.status == "OPENING"

    # A tick before the deadline leaves it resting; the one at the deadline cancels it.
    deadline = deadline_ms(signal.candle_open_time_ms, MINUTE, 1)
    await rig.tick("100000", deadline - 1)
    assert ("cancel", client_id) not in rig.exchange.calls
    await rig.tick("100000", deadline)
    assert rig.exchange.calls.count(("cancel", client_id)) == 1
    assert (await rig.order(client_id)).status == "CANCELED"
    assert await rig.position() is None  # nothing filled: the position never existed
    [ended] = await rig.alerts("entry_limit_ended")
    assert "timeout" in ended.message


async def test_a_limit_maker_refused_at_every_send_fails_with_an_alert(rig: Rig) -> None:
    await rig.start()
    rig.exchange.then("order", WOULD_TAKE, WOULD_TAKE, WOULD_TAKE)
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert rig.exchange.sent() == [client_id] * 3  # ORDER_SEND_ATTEMPTS
    order = await rig.order(client_id)
    assert order.status == "REJECTED" and "would have taken liquidity" in order.reason
    assert await rig.position() is None
    assert not [c for c in rig.exchange.calls if c[0] == "cancel"]


async def test_a_close_command_cancels_a_resting_limit_entry_at_once(rig: Rig) -> None:
    await rig.start()
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    assert (await rig.order(client_id)).status == "SUBMITTED"
    await rig.close()
    assert rig.exchange.calls.count(("cancel", client_id)) == 1
    assert (await rig.order(client_id)).status == "CANCELED"
    assert await rig.position() is None
    answers = await rig.answers()
    assert answers[-1][0] == "done", answers


async def test_a_fallback_the_stopped_process_had_not_written_is_sent_by_the_next_owner(
    rig: Rig, redis_url: str
) -> None:
    rig.settings = limit_settings(redis_url, rig.settings.database_url, ENTRY_LIMIT_FALLBACK="true")
    rig.executor = rig.replica()
    await rig.start()
    signal = await rig.signal("BUY")
    client_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)

    async def stopped(*args: object) -> None:  # the process ends between the cancel and the fallback
        return None

    rig.executor.flows.limits.fallback = stopped  # type: ignore[method-assign]
    deadline = deadline_ms(signal.candle_open_time_ms, MINUTE, 1)
    await rig.tick("100000", deadline)
    assert (await rig.order(client_id)).status == "CANCELED" and await rig.position() is None

    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    await rig.redis.hset(streams.MARKET_CLOCK, SYMBOL, str(deadline + 1000))
    await rig.redis.hset(streams.MARKET_LAST_PRICE, SYMBOL, "100000")
    rig.executor = await rig.start(rig.replica("executor-b"))
    fallback = fallback_client_order_id(client_id)
    assert rig.exchange.sent(fallback) == [fallback], [(a.code, a.message) for a in await rig.alerts()]
    position = await rig.position()
    assert position is not None and position.status == "OPEN" and position.entry_client_order_id == fallback

    # Once written, another start sends nothing more.
    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.executor = await rig.start(rig.replica("executor-c"))
    assert rig.exchange.sent(fallback) == [fallback], [(a.code, a.message) for a in await rig.alerts()]
