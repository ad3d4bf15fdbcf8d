"""The account circuit breaker through the shell: losing trades trip it, entries stop while
exits go on, the next UTC market day clears the daily limit, and an operator reset is answered
and recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.executor.config import ExecutorSettings
from shared import streams
from shared.codec import loads
from shared.events import BotCommand, Outcome, make_event
from shared.store.database import migrate, open_engine
from shared.trading.breaker import DAY_MS
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.component.conftest import MINUTE, SETTINGS, Rig
from tests.component.fake_exchange import SYMBOL, FakeExchange
from tests.support.fake_clock import FakeClock

D = Decimal


@pytest.fixture
async def rig(
    tmp_path: Path, redis_url: str, redis_client: Redis, exchange: FakeExchange, clock: FakeClock
) -> AsyncIterator[Rig]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    engine = open_engine(url)
    limits = {"BREAKER_DAILY_LOSS_PCT": "2.5", "BREAKER_MAX_LOSING_STREAK": "5"}
    settings = ExecutorSettings(**SETTINGS, **limits, REDIS_URL=redis_url, DATABASE_URL=url)
    yield Rig(redis_client, engine, exchange, clock, settings)
    await engine.dispose()


async def losing_trade(rig: Rig, sell_at: str) -> str:
    """Buy at 100000, let the stop-loss sell at ``sell_at``; the entry's client order id."""
    rig.exchange.price = D("100000")
    signal = await rig.signal("BUY")
    entry_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)
    position = await rig.position()
    assert position is not None and position.status == "OPEN", "the entry opened"
    rig.clock.advance(1.0)
    rig.exchange.price = D(sell_at)
    await rig.tick(sell_at)
    assert (await rig.order(exit_client_order_id(entry_id))).status == "FILLED"
    rig.clock.advance(MINUTE / 1000)
    return entry_id


async def test_losses_trip_the_daily_limit_entries_stop_and_the_next_market_day_clears_it(rig: Rig) -> None:
    await rig.start()
    # A 3 % drop on the position loses about 1.6 % of the 10000 USDT equity: two trip 2.5 %.
    await losing_trade(rig, "97000")
    assert await rig.alerts("breaker_daily_loss") == []
    await losing_trade(rig, "97000")
    [trip] = await rig.alerts("breaker_daily_loss")
    assert trip.level == "error" and "limit_pct 2.5" in trip.message and "day_start_equity 10000" in trip.message
    record = loads(await rig.redis.get(streams.BREAKER))
    assert record["state"]["tripped"]["limit"] == "daily_loss"

    sent = rig.exchange.sent()
    await rig.signal("BUY")
    assert rig.exchange.sent() == sent, "no entry while the breaker is tripped"
    [skip] = (await rig.alerts("entry_skipped"))[-1:]
    assert "circuit breaker tripped on daily_loss" in skip.message

    # The next UTC day of market time: the daily limit clears and the entry goes through.
    rig.clock.advance((DAY_MS - rig.market_ms() % DAY_MS) / 1000 + 120)
    await rig.signal("BUY")
    assert len(rig.exchange.sent()) == len(sent) + 1
    assert [a.code for a in await rig.alerts("breaker_cleared")] == ["breaker_cleared"]


async def test_while_tripped_the_stop_loss_and_a_manual_close_still_sell(rig: Rig) -> None:
    await rig.start()
    rig.exchange.price = D("100000")
    signal = await rig.signal("BUY")
    entry_id = entry_client_order_id(SYMBOL, signal.candle_open_time_ms)

    # Another replica's symbol loses enough to trip the breaker while this position is open.
    async def equity() -> Decimal:
        return D("10000")

    await rig.executor.control.breaker.position_closed(9_999, D("-300"), rig.market_ms(), equity)
    assert len(await rig.alerts("breaker_daily_loss")) == 1
    rig.clock.advance(1.0)
    await rig.tick("97000")  # the stop-loss still sells
    assert (await rig.order(exit_client_order_id(entry_id))).status == "FILLED"
    [closed] = await rig.closed()
    assert closed.exit_reason == "stop_loss"
    assert len(await rig.alerts("breaker_daily_loss")) == 1, "a tripped breaker does not trip again"


async def test_an_operator_reset_is_answered_recorded_and_allows_entries_again(rig: Rig) -> None:
    await rig.start()
    await losing_trade(rig, "97000")
    await losing_trade(rig, "97000")
    assert len(await rig.alerts("breaker_daily_loss")) == 1
    command = BotCommand(command="reset_breaker", requested_by="alice", command_id="cmd-reset-1")
    event = make_event(command, "api")
    await rig.executor.control.apply(event)
    await rig.executor.control.apply(event)  # every replica reads it: applied once
    outcome, reason = (await rig.answers())[-1]
    assert outcome == Outcome.DONE and "reset by alice" in reason and "daily_loss cleared" in reason
    record = loads(await rig.redis.get(streams.BREAKER))
    assert record["last_reset"]["by"] == "alice" and record["last_reset"]["cleared"] == "daily_loss"
    assert record["state"]["tripped"] is None and record["resets"] == ["cmd-reset-1"]
    assert [a.code for a in await rig.alerts("breaker_reset")] == ["breaker_reset"]
    sent = rig.exchange.sent()
    await rig.signal("BUY")
    assert len(rig.exchange.sent()) == len(sent) + 1


async def test_a_trade_closed_by_a_process_that_died_before_counting_it_is_counted_once_at_restart(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rig.start()
    await losing_trade(rig, "97000")
    first = loads(await rig.redis.get(streams.BREAKER))
    assert first["state"]["losing_streak"] == 1

    # The second loss is written to the ledger, then the process dies before the breaker counts it.
    breaker = rig.executor.control.breaker

    async def died(*args: object) -> None:
        raise ConnectionError("the process died between the ledger's write and the count")

    monkeypatch.setattr(breaker, "position_closed", died)
    with pytest.raises(ConnectionError):
        await losing_trade(rig, "97000")
    assert len(await rig.closed()) == 2, "the ledger has the second close"
    assert loads(await rig.redis.get(streams.BREAKER))["state"] == first["state"], "the breaker has not counted it"
    assert await rig.alerts("breaker_daily_loss") == []

    for replica in ("executor-b", "executor-c"):  # a restart, then another one: counted once
        await rig.redis.delete(streams.lease_key("executor", SYMBOL))
        rig.executor = await rig.start(rig.replica(replica))
        record = loads(await rig.redis.get(streams.BREAKER))
        assert record["state"]["losing_streak"] == 2
        assert sorted(p[0] for p in record["counted"]) == sorted(p.id for p in await rig.closed())
        assert len(await rig.alerts("breaker_daily_loss")) == 1, "the missed loss trips the daily limit once"
    sent = rig.exchange.sent()
    await rig.signal("BUY")
    assert rig.exchange.sent() == sent, "no entry while the breaker is tripped"


async def test_trades_closed_while_every_limit_was_unset_are_not_counted_once_limits_are_set(rig: Rig) -> None:
    unset = {"BREAKER_DAILY_LOSS_PCT": None, "BREAKER_MAX_LOSING_STREAK": None}
    settings = ExecutorSettings(**{**rig.settings.model_dump(by_alias=True), **unset})
    off = Rig(rig.redis, rig.engine, rig.exchange, rig.clock, settings)
    await off.start()
    await losing_trade(off, "97000")
    assert len(await rig.closed()) == 1
    await rig.redis.delete(streams.lease_key("executor", SYMBOL))
    rig.executor = await rig.start(rig.replica("executor-b"))
    record = loads(await rig.redis.get(streams.BREAKER))
    assert record["counting"] is True and record.get("counted", []) == []
    assert record.get("state", {}).get("losing_streak", 0) == 0
    await losing_trade(rig, "97000")
    assert loads(await rig.redis.get(streams.BREAKER))["state"]["losing_streak"] == 1


async def test_the_breaker_measures_the_whole_equity_quote_and_assets_at_their_last_price(rig: Rig) -> None:
    # 0.1 BTC held besides the quote balance: the equity the day starts with counts it at the
    # last price (as the dashboard's profit figures do), not the free USDT alone.
    rig.exchange.free["BTC"] = D("0.1")
    await rig.start()
    await rig.redis.hset(streams.MARKET_LAST_PRICE, SYMBOL, "97000")
    await losing_trade(rig, "97000")
    state = loads(await rig.redis.get(streams.BREAKER))["state"]
    usdt_before = D("10000")
    held = D("0.1") * D("97000")
    # Give or take the trade's fee dust (a fraction of one quantity step, counted at the price too).
    assert abs(D(state["day_start_equity"]) - (usdt_before + held)) < D(1), state
    assert D(state["equity"]) < usdt_before + held
